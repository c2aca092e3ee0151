"""Quality of the text: the signs of broken or unnormalised text a corpus cleaner looks for,
each counted exactly over the texts seen, with the first example ids.

Duplicates are counted as the documents whose text an earlier one already had: exactly (the
same characters), or only after NFKC normalisation (full-width and half-width forms, which
differ in characters but not for a reader). Empty and whitespace-only texts are not counted as
duplicates of each other."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from typing import Any

EXAMPLES = 5
TOO_SHORT = 10  # characters (spaces at the ends not counted): a text under this says little
# UTF-8 read as cp1252 or Latin-1: a lead byte (U+00C2..U+00F4) followed by what a continuation
# byte (0x80..0xBF) becomes, e.g. "ã\x81\x82" for あ, "â€™" for ’, "Ã©" for é.
MOJIBAKE = re.compile(
    "[\u00c2-\u00f4][\u0080-\u00bf\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc"
    "\u2013\u2014\u2018-\u201e\u2020-\u2022\u2026\u2030\u2039\u203a\u20ac\u2122]"
)
CONTROL = re.compile("[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]")  # not \t \n \r
HALFWIDTH_KATAKANA = re.compile("[\uff61-\uff9f]")
FULLWIDTH_ASCII = re.compile("[\uff01-\uff5e]")

# name -> what it counts (the page's table says so)
CHECKS = {
    "missing": "text is null",
    "undecodable": "text bytes that are not UTF-8",
    "empty": "text is the empty string",
    "whitespace_only": "text holds only whitespace (U+3000 included)",
    "too_short": f"under {TOO_SHORT} characters once the ends are stripped (not empty)",
    "replacement_char": "holds U+FFFD, the mark of bytes that were not decodable upstream",
    "mojibake": "holds UTF-8 read as cp1252/Latin-1 (e.g. 'ã\\x81', 'Ã©', 'â€')",
    "control_chars": "holds control characters other than \\t \\n \\r",
    "halfwidth_katakana": "holds half-width katakana (U+FF61..U+FF9F): NFKC makes them full-width",
    "fullwidth_ascii": "holds full-width ASCII (U+FF01..U+FF5E): NFKC makes them ASCII",
    "over_max_chars": "longer than input.max_chars_per_row (cut before tokenizing)",
    "exact_duplicates": "same text as an earlier document",
    "nfkc_duplicates": "same text as an earlier document after NFKC, but not exactly",
}
PATTERNS = {
    "replacement_char": re.compile("\ufffd"),
    "mojibake": MOJIBAKE,
    "control_chars": CONTROL,
    "halfwidth_katakana": HALFWIDTH_KATAKANA,
    "fullwidth_ascii": FULLWIDTH_ASCII,
}


def _digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest()


class TextQuality:
    """Counts and example ids of every check in CHECKS over the texts added (memory: 16 bytes
    per distinct text seen, for the duplicate checks)."""

    def __init__(self, max_chars: int | None = None):
        self.max_chars = max_chars
        self.documents = 0
        self.counts = dict.fromkeys(CHECKS, 0)
        self.examples: dict[str, list[str]] = {name: [] for name in CHECKS}
        self._exact: set[bytes] = set()
        self._nfkc: set[bytes] = set()

    def add(self, ids: list[str], values: list[Any]) -> None:
        for row_id, value in zip(ids, values, strict=True):
            self.documents += 1
            for name in self.defects(value):
                self._count(name, row_id)

    def defects(self, value: Any) -> list[str]:
        """The checks one text fails."""
        if value is None:
            return ["missing"]
        if isinstance(value, bytes):
            try:
                value = value.decode("utf-8")
            except UnicodeDecodeError:
                return ["undecodable"]
        if not isinstance(value, str):
            return ["missing"]
        if value == "":
            return ["empty"]
        stripped = value.strip()
        if not stripped:
            return ["whitespace_only"]
        found = [name for name, pattern in PATTERNS.items() if pattern.search(value)]
        if len(stripped) < TOO_SHORT:
            found.append("too_short")
        if self.max_chars is not None and len(value) > self.max_chars:
            found.append("over_max_chars")
        found += self._duplicate(value)
        return found

    def _duplicate(self, text: str) -> list[str]:
        exact, nfkc = _digest(text), _digest(unicodedata.normalize("NFKC", text))
        seen_exact, seen_nfkc = exact in self._exact, nfkc in self._nfkc
        self._exact.add(exact)
        self._nfkc.add(nfkc)
        if seen_exact:
            return ["exact_duplicates"]
        return ["nfkc_duplicates"] if seen_nfkc else []

    def _count(self, name: str, row_id: str) -> None:
        self.counts[name] += 1
        if len(self.examples[name]) < EXAMPLES:
            self.examples[name].append(row_id)
