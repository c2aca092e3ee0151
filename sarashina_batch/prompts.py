"""Prompt texts of Sarashina-Embedding-v2-1B, as published on its model card (JMTEB profile)."""

from __future__ import annotations

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
