"""StackOverflow body HTML → plain text: block tags become line breaks, `<pre><code>` becomes
InCoder's `<code>` markup (Figure 6c), entities are decoded, and inline whitespace folds."""

from __future__ import annotations

import re
from html.parser import HTMLParser

BLOCK_TAGS = frozenset(
    "address article aside blockquote dd details div dl dt figcaption figure footer h1 h2 h3 h4 h5 h6 "
    "header hr li main nav ol p section summary table tbody td tfoot th thead tr ul".split()
)
_HTML_SPACE = re.compile(r"[ \t\n\r\f]+")  # HTML's whitespace; a no-break space is kept


class _BodyText(HTMLParser):
    """Collects the lines of a body: text lines and `<code>` blocks."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self.inline: list[str] = []
        self.code: list[str] = []
        self.pre_depth = 0

    def handle_starttag(self, tag, attrs):
        if tag == "pre":
            if not self.pre_depth:
                self.end_line()
            self.pre_depth += 1
        elif not self.pre_depth and (tag == "br" or tag in BLOCK_TAGS):
            self.end_line()

    def handle_endtag(self, tag):
        if tag == "pre" and self.pre_depth:
            self.pre_depth -= 1
            if not self.pre_depth:
                self.end_code()
        elif not self.pre_depth and tag in BLOCK_TAGS:
            self.end_line()

    def handle_data(self, data):
        (self.code if self.pre_depth else self.inline).append(data)

    def end_line(self) -> None:
        text = _HTML_SPACE.sub(" ", "".join(self.inline)).strip(" ")
        if text:
            self.lines.append(text)
        self.inline = []

    def end_code(self) -> None:
        code = "".join(self.code)
        code = code[1:] if code.startswith("\n") else code  # HTML drops a newline right after <pre>
        self.lines.append(f"<code>\n{code.rstrip()}\n</code>")
        self.code = []

    def text(self) -> str:
        self.close()
        if self.pre_depth:  # an unclosed <pre> still ends as a code block
            self.end_code()
        self.end_line()
        return "\n".join(self.lines)


def body_text(html: str) -> str:
    """A post body's HTML as training text (see the module docstring)."""
    parser = _BodyText()
    parser.feed(html)
    return parser.text()


# ---- join and select ---------------------------------------------------------------------
