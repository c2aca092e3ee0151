"""The tokenizer parity guard: before a run writes anything (and in `plan`), the ids the job
would feed the model are compared with the SentencePiece library's own encoding of the
model's `tokenizer.model`, on a built-in probe set and a sample of the run's own texts.

What is compared:
- the job's tokenizer (model/tokenizer.py) against SentencePiece, text by text;
- with model.tokenizer=auto, also the model's tokenizer.json, when it ships one beside
  tokenizer.model: that is what transformers and sentence-transformers load, so whoever embeds
  queries with them gets its ids. A tokenizer.json that disagrees would put queries and
  documents in two vector spaces.
Any difference refuses the run, naming the texts, the libraries and the fix. A model with
only a tokenizer.json has nothing to compare against: the report says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .tokenizer import (
    SENTENCEPIECE_FILE,
    TOKENIZER_JSON,
    ModelTokenizer,
    TokenizerError,
    TransformersTokenizer,
    library_version,
)

# Texts where tokenizers are known to part ways: normalisation (full- and half-width forms),
# whitespace (leading, trailing, repeated, newlines, tabs, ideographic space), byte fallback
# (emoji, rare kanji, combining marks), script changes, Latin and code.
PROBES = (
    "吾輩は猫である。名前はまだ無い。",
    "東京都は日本の首都であり、人口は約千四百万人です。",
    "機械学習モデルは大量のデータから規則性を学習します。",
    "カタカナのコンピュータとソフトウェアとデータベース。",
    "ｶﾀｶﾅ ﾃﾞｰﾀﾍﾞｰｽ（半角カナ）",
    "全角ＡＢＣ１２３！？、。「引用」『二重』【見出し】",
    "半角ABC123!?,.()[]{}<>",
    "価格は１，２８０円（税込）、送料は￥５００です。",
    "絵文字😀👍🏽と家族👨‍👩‍👧、国旗🇯🇵。",
    "結合文字: e\u0301 か\u3099 ア\u309a 丁\u20dd",
    "異体字: 葛\U000e0100 𠮷野家 𩸽",
    "  先頭と末尾に空白  ",
    "連続する   空白\u3000\u3000全角空白",
    "改行\nを含む\n\n段落\r\nと\tタブ",
    "\n\n前後の改行\n",
    "text: 質問を与えるので、その質問に答えるのに役立つ関連文書を検索してください。",
    "task: クエリを与えるので,もっともクエリに意味が似ている一節を探してください。\nquery: 富士山の高さは？",
    "The quick brown fox jumps over the lazy dog. Ünïcödé façade naïve.",
    "def embed(texts: list[str]) -> np.ndarray:\n    return model.encode(texts, batch_size=32)  # コメント",
    'SELECT id, text FROM docs WHERE lang = "ja" AND length(text) > 100;',
    "https://example.co.jp/path?q=検索&page=2#section-3",
    "〜ー−‐―…・･ ﾟﾞ ㈱ ㍻ ① Ⅻ ℃ ㌔",
    "<s>特殊</s>な<pad>文字列<unk>",
    "0123456789 ０１２３４５６７８９ 一二三四五六七八九〇",
)
EXAMPLES_SHOWN = 3


@dataclass(frozen=True)
class Disagreement:
    text: str
    ids: list[int]  # what the checked tokenizer gives
    expected: list[int]  # SentencePiece's

    def describe(self) -> str:
        first = next((i for i, (a, b) in enumerate(zip(self.ids, self.expected, strict=False)) if a != b), None)
        first = min(len(self.ids), len(self.expected)) if first is None else first
        return (
            f"{_excerpt(self.text)}: {len(self.ids)} tokens, SentencePiece {len(self.expected)}; "
            f"first difference at token {first}"
        )


@dataclass
class ParityCheck:
    """One tokenizer compared with SentencePiece."""

    what: str  # "the job's tokenizer (...)" or "the model's tokenizer.json (...)"
    compared: int = 0
    differing: list[Disagreement] = field(default_factory=list)
    fix: str = ""


@dataclass
class ParityReport:
    reference: str | None  # "sentencepiece 0.2.3 on tokenizer.model", or None: nothing to compare against
    checks: list[ParityCheck] = field(default_factory=list)
    note: str | None = None

    @property
    def passed(self) -> bool:
        return all(not check.differing for check in self.checks)

    def as_dict(self) -> dict:
        return {
            "reference": self.reference,
            "passed": self.passed,
            "note": self.note,
            "checks": [
                {
                    "what": c.what,
                    "compared": c.compared,
                    "differing": len(c.differing),
                    "examples": [d.describe() for d in c.differing[:EXAMPLES_SHOWN]],
                }
                for c in self.checks
            ],
        }

    def summary(self) -> str:
        if self.reference is None:
            return self.note or "no tokenizer.model: nothing to compare against"
        parts = [f"{c.what}: {c.compared - len(c.differing)}/{c.compared} equal" for c in self.checks]
        return f"ids compared with {self.reference}: " + "; ".join(parts)

    def failure(self, model: str) -> str:
        """The message a refused run ends with."""
        lines = []
        for check in (c for c in self.checks if c.differing):
            examples = "; ".join(d.describe() for d in check.differing[:EXAMPLES_SHOWN])
            what = check.what[0].upper() + check.what[1:]
            lines.append(
                f"{what} gives other ids than {self.reference} on {len(check.differing)} of "
                f"{check.compared} texts (e.g. {examples}). {check.fix}"
            )
        versions = ", ".join(f"{n} {library_version(n)}" for n in ("sentencepiece", "transformers", "tokenizers"))
        return (
            f"model {model}: the tokenizer does not give the ids the model was trained on, so its vectors would "
            f"not be the model's. {' '.join(lines)} (libraries: {versions})"
        )


class TokenizerMismatch(TokenizerError):
    """The job's tokenizer (or the model's tokenizer.json) disagrees with its tokenizer.model."""


def sentencepiece_reference(model_file: str, add_bos: bool, add_eos: bool, max_length: int | None = None):
    """SentencePiece's encoding as its documentation calls it, one text at a time: the truth
    the job's tokenizer is held to (kept apart from the job's own batched path). max_length
    cuts as transformers does: the text's last tokens go, BOS and EOS stay."""
    import sentencepiece

    processor = sentencepiece.SentencePieceProcessor(model_file=model_file)
    bos, eos = [processor.bos_id()] * add_bos, [processor.eos_id()] * add_eos
    room = None if max_length is None else max_length - len(bos) - len(eos)

    def encode(text: str) -> list[int]:
        return bos + processor.encode(text)[:room] + eos

    return encode


def check_parity(tokenizer: ModelTokenizer, texts: list[str] = ()) -> ParityReport:
    """The job's tokenizer (and a shipped tokenizer.json, under model.tokenizer=auto) against
    SentencePiece, on the probes and the given texts."""
    files = tokenizer.files
    if files.sentencepiece_model is None:
        return ParityReport(
            None,
            note=f"the model ships only {TOKENIZER_JSON}: there is no {SENTENCEPIECE_FILE} to compare its ids "
            f"against ({tokenizer.identity.describe()} is used as sentence-transformers uses it)",
        )
    reference = sentencepiece_reference(files.sentencepiece_model, files.add_bos, files.add_eos)
    report = ParityReport(f"sentencepiece {library_version('sentencepiece')} on {SENTENCEPIECE_FILE}")
    samples = list(dict.fromkeys([*PROBES, *texts]))
    expected = [reference(text) for text in samples]
    job = ParityCheck(
        f"the job's tokenizer ({tokenizer.identity.library})",
        fix="Set model.tokenizer=auto (SentencePiece on tokenizer.model), or =sentencepiece.",
    )
    report.checks.append(_compare(job, tokenizer.encode(samples)[0], samples, expected))
    if tokenizer.spec.implementation == "auto" and files.tokenizer_json and tokenizer.implementation != "transformers":
        shipped = TransformersTokenizer(files)
        other = ParityCheck(
            f"the model's {TOKENIZER_JSON} (transformers {library_version('transformers')}, what "
            "sentence-transformers users of this model get, e.g. for queries)",
            fix=(
                "Queries embedded with sentence-transformers would not share the documents' vector space. Fix or "
                f"remove {TOKENIZER_JSON} in {files.folder}, or set model.tokenizer=sentencepiece to embed with "
                f"{SENTENCEPIECE_FILE} anyway (and tokenize queries with SentencePiece too, as `sarashina-batch "
                "query` does)."
            ),
        )
        report.checks.append(_compare(other, shipped.encode(samples)[0], samples, expected))
    return report


def _compare(check: ParityCheck, got: list[list[int]], texts: list[str], expected: list[list[int]]) -> ParityCheck:
    check.compared = len(texts)
    for text, ids, truth in zip(texts, got, expected, strict=True):
        if list(ids) != list(truth):
            check.differing.append(Disagreement(text, list(ids), list(truth)))
    return check


def require_parity(tokenizer: ModelTokenizer, texts: list[str] = ()) -> ParityReport:
    """check_parity, raising TokenizerMismatch on any difference."""
    report = check_parity(tokenizer, texts)
    if not report.passed:
        raise TokenizerMismatch(report.failure(tokenizer.spec.model))
    return report


def _excerpt(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "…")
