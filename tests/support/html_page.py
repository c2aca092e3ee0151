"""What a browser would fetch from an HTML page, and the figures a report page draws, read
with the standard library's parser."""

from __future__ import annotations

import json
from html.parser import HTMLParser

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
# Attributes that make a browser fetch (or navigate to) what they name.
FETCHING = {"src", "href", "data", "poster", "srcset", "action", "background", "formaction"}


class Page(HTMLParser):
    """Every tag, the URLs its attributes name, the JSON of each figure script, and the elements
    left open or closed out of order (`unbalanced`: empty for a well-formed page)."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.references: list[tuple[str, str, str]] = []  # (tag, attribute, value)
        self.figures: dict[tuple[str, str], dict] = {}
        self.scripts = 0
        self.inline_bytes = 0
        self._figure: tuple[str, str] | None = None
        self._script = False
        self._open: list[str] = []
        self.unbalanced: list[str] = []
        self.feed(text)
        self.close()
        self.unbalanced += [f"<{tag}> never closed" for tag in self._open]

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag not in VOID:
            self._open.append(tag)
        found = dict(attrs)
        self.references += [(tag, name, value or "") for name, value in attrs if name in FETCHING]
        if tag == "script":
            self.scripts += 1
            self._script = True
            if "figure" in (found.get("class") or "").split():
                self._figure = (found["data-section"], found["data-name"])

    def handle_endtag(self, tag):
        if self._open and self._open[-1] == tag:
            self._open.pop()
        else:
            self.unbalanced.append(f"</{tag}> inside {self._open[-3:]}")
        if tag == "script":
            self._script, self._figure = False, None

    def handle_data(self, data):
        if self._script:
            self.inline_bytes += len(data)
        if self._figure is not None:
            self.figures[self._figure] = json.loads(data)

    def external(self) -> list[tuple[str, str, str]]:
        """References that leave the page: any scheme or protocol-relative URL (in-page anchors
        are fine)."""
        return [ref for ref in self.references if ref[2] and not ref[2].startswith("#")]
