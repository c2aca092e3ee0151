"""Sarashina-Embedding-v2-1B as the job serves it, in one place: its hub id, pooling, shapes and
longest input, the prompts of its model card (JMTEB profile), and the one way a row's prompt is
rendered, which the run, passages, the tokenizer check, verify and query all use."""

from __future__ import annotations

MODEL_ID = "sbintuitions/sarashina-embedding-v2-1b"
POOLING = "lasttoken"  # the last token's hidden state (sentence-transformers' Pooling module)
MAX_SEQ_LENGTH = 8192

# The decoder's shapes (its config.json): FLOPs and GPU hours are computed from them.
SHAPES = {
    "hidden_size": 1792,
    "intermediate_size": 6272,
    "num_hidden_layers": 24,
    "num_attention_heads": 16,
    "num_key_value_heads": 8,
    "head_dim": 112,
    "vocab_size": 102400,
    "rope_theta": 500000.0,
    "max_position_embeddings": MAX_SEQ_LENGTH,
    "rms_norm_eps": 1e-5,
}
DIMENSIONS = SHAPES["hidden_size"]

INSTRUCTIONS = {
    "retrieval": "質問を与えるので、その質問に答えるのに役立つ関連文書を検索してください。",
    "reranking": "質問を与えるので、その質問に答えるのに役立つ関連文書を検索してください。",
    "clustering": "与えられたドキュメントのトピックまたはテーマを特定してください。",
    "classification": "与えられたレビューを適切な評価カテゴリに分類してください。",
    "sts": "クエリを与えるので,もっともクエリに意味が似ている一節を探してください。",
}

DOCUMENT_TEMPLATE = "text: {text}"
QUERY_TEMPLATE = "task: {instruction}\nquery: {text}"


def instruction_for(task: str, instruction: str | None = None) -> str:
    """The query instruction: prompt.instruction when set, else the model card's for the task."""
    return instruction if instruction is not None else INSTRUCTIONS[task]


def prefixes(task: str, instruction: str | None = None) -> dict[str, str]:
    """The text put in front of each row, by role."""
    return {
        "document": DOCUMENT_TEMPLATE.format(text=""),
        "query": QUERY_TEMPLATE.format(instruction=instruction_for(task, instruction), text=""),
    }


def render_prompt(prefix: str, text: str, max_chars: int | None = None) -> str:
    """The string the tokenizer gets: the role's prefix and the text (cut at max_chars), stripped
    as the model card's sentence-transformers release (4.0.2) strips before tokenizing (a
    trailing newline would otherwise move the pooled last token)."""
    return (prefix + (text if max_chars is None else text[:max_chars])).strip()
