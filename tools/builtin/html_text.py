"""HTML -> readable plain text with the standard library's parser.

A page's markup, scripts and styles would fill a small model's context with noise; the
text, with paragraphs and list items on their own lines, is what it can use.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

_SKIP = {"script", "style", "noscript", "template", "svg", "iframe", "object", "canvas", "head"}
_BLOCK = {
    "address", "article", "aside", "blockquote", "br", "dd", "details", "div", "dl", "dt",
    "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6",
    "header", "hr", "li", "main", "nav", "ol", "p", "pre", "section", "summary", "table",
    "tr", "ul",
}  # fmt: skip


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping: list[str] = []  # open elements whose text is not shown
        self.pre_depth = 0
        self.title: list[str] = []
        self.in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self.in_title = True
            return
        if tag == "body" and "head" in self.skipping:  # </head> is optional in HTML
            del self.skipping[self.skipping.index("head") :]
        if tag in _SKIP:
            self.skipping.append(tag)
            return
        if tag == "pre":
            self.pre_depth += 1
        if tag in _BLOCK:
            self.parts.append("\n")
        if tag == "li":
            self.parts.append("- ")
        elif tag in ("td", "th"):
            self.parts.append(" ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self.in_title = False
            return
        if tag in _SKIP:
            if tag in self.skipping:
                idx = len(self.skipping) - 1 - self.skipping[::-1].index(tag)
                del self.skipping[idx:]
            return
        if tag == "pre":
            self.pre_depth = max(0, self.pre_depth - 1)
        if tag in _BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self.in_title:
            self.title.append(data)
            return
        if self.skipping:
            return
        if self.pre_depth:
            self.parts.append(data)
        else:
            self.parts.append(re.sub(r"\s+", " ", data))


def html_to_text(html: str) -> str:
    """The visible text of an HTML document: the title, a blank line, then one block
    (heading, paragraph, list item, table row) per line."""
    parser = _TextExtractor()
    try:
        parser.feed(html)
        parser.close()
    except AssertionError:  # the stdlib parser gives up on some malformed markup
        pass
    # One block per line and no blank lines: a small model's context is precious.
    text = "\n".join(s for line in "".join(parser.parts).splitlines() if (s := line.strip()))
    title = re.sub(r"\s+", " ", "".join(parser.title)).strip()
    if title and not text.startswith(title):
        text = f"{title}\n\n{text}" if text else title
    return text
