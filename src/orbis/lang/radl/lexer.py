"""RADL tokens, with the line and column of each (hand-written scanner, see docs/radl.md).

Rules follow radl 1.3.5 (reference §1.1), except where Orbis is stricter or more helpful:
unknown characters are errors (1.3.5 drops them), `"…"` strings are accepted with a warning,
and `'random(N)'` takes any N up to ORBIS_MAX_RANDOM_LENGTH (docs/limits.md).
"""

from __future__ import annotations

import re
import secrets
import string
from dataclasses import dataclass

from orbis.config import limits
from orbis.lang.errors import Problems
from orbis.model.infrastructure import Position

KEYWORDS = frozenset(
    [
        "network",
        "system",
        "ansible",
        "description",
        "configure",
        "contextualize",
        "deploy",
        "soft",
        "and",
        "contains",
        "step",
        "with",
        "option",
    ]
)
_RANDOM = re.compile(r"random\((\d+)\)")
_INPUT = re.compile(r"@input\.[\w.-]+@")
_RECIPE_END = re.compile(r"^@end", re.M)
_ALPHANUM = string.ascii_letters + string.digits
# One pass for the common tokens; strings, @ and unknown characters are handled by hand.
_TOKEN = re.compile(
    r"(?P<nl>\n)|(?P<ws>[ \t\r\f\v]+)|(?P<comment>#[^\n]*)|(?P<num>\d+(?:\.\d*)?)"
    r"|(?P<id>[^\W\d][\w.-]*|\.[\w.-]*)|(?P<op><=|>=|[<>=])|(?P<punct>[()\[\],])"
)


@dataclass(frozen=True)
class Token:
    kind: str  # ID KEYWORD NUMBER STRING OP ( ) [ ] , RECIPE END
    text: str  # as written (for STRING: the value; for RECIPE: the raw lines)
    line: int
    col: int
    value: object = None  # NUMBER: int/float; STRING: str

    def describe(self) -> str:
        if self.kind == "END":
            return "the end of the document"
        if self.kind == "STRING":
            return f"string '{self.text}'"
        if self.kind == "RECIPE":
            return "a recipe"
        return f"'{self.text}'"


def random_text(length: int) -> str:
    """N random alphanumerics for `'random(N)'` (a seam for tests)."""
    return "".join(secrets.choice(_ALPHANUM) for _ in range(length))


class Lexer:
    def __init__(self, text: str, file: str, problems: Problems) -> None:
        self.text, self.file, self.problems = text, file, problems
        self.i, self.line, self.line_start = 0, 1, 0
        self.tokens: list[Token] = []

    def pos(self, line: int, col: int) -> Position:
        return Position(self.file, line, col)

    def _col(self, index: int) -> int:
        return index - self.line_start + 1

    def _newlines(self, start: int, end: int) -> None:
        """Advance the line counter over text[start:end]."""
        count = self.text.count("\n", start, end)
        if count:
            self.line += count
            self.line_start = self.text.rindex("\n", start, end) + 1

    def add(self, kind: str, text: str, start: int, value: object = None) -> None:
        self.tokens.append(Token(kind, text, self.line, self._col(start), value))

    def run(self) -> list[Token]:
        text, n, tokens = self.text, len(self.text), self.tokens
        match = _TOKEN.match
        while self.i < n:
            m = match(text, self.i)
            kind = m.lastgroup if m else None
            if m is None or kind is None:
                c = text[self.i]
                if c == "'" or c == '"':
                    self._string(c)
                elif c == "@":
                    self._at()
                else:
                    self._illegal(c)
                continue
            self.i = m.end()
            if kind == "nl":
                self.line += 1
                self.line_start = self.i
            elif kind in ("ws", "comment"):
                continue
            else:
                word, col = m.group(), m.start() - self.line_start + 1
                if kind == "num":
                    value: object = float(word) if "." in word else int(word)
                    tokens.append(Token("NUMBER", word, self.line, col, value))
                elif kind == "id":
                    tokens.append(
                        Token("KEYWORD" if word in KEYWORDS else "ID", word, self.line, col)
                    )
                elif kind == "op":
                    tokens.append(Token("OP", word, self.line, col))
                else:
                    tokens.append(Token(word, word, self.line, col))
        self.add("END", "", self.i)
        return tokens

    def _illegal(self, c: str) -> None:
        hint = {
            "-": "RADL numbers have no sign",
            ";": "features are joined with 'and'",
            "{": "RADL groups features with ( )",
            "}": "RADL groups features with ( )",
        }.get(c, "")
        self.problems.add(self.pos(self.line, self._col(self.i)), f"illegal character {c!r}", hint)
        self.i += 1

    def _string(self, quote: str) -> None:
        start, line, col = self.i, self.line, self._col(self.i)
        text, i, n = self.text, self.i + 1, len(self.text)
        while i < n and text[i] != quote:
            i += 2 if text[i] == "\\" else 1
        if i >= n:
            self.problems.add(
                self.pos(line, col),
                "string is not closed",
                f"add the closing {quote}; strings may span lines",
            )
            self.i = n
            return
        raw = text[start + 1 : i]
        value = raw.replace("\\" + quote, quote)  # 1.3.5: only \' is unescaped
        if quote == '"':
            self.problems.warn(
                self.pos(line, col),
                "double-quoted string: an Orbis extension, IM's parser only takes '...'",
            )
        m = _RANDOM.fullmatch(value)
        token_value = self._random(m.group(1), line, col) if m else value
        self.tokens.append(Token("STRING", value, line, col, token_value))
        self.i = i + 1
        self._newlines(start, self.i)

    def _random(self, digits: str, line: int, col: int) -> str:
        limit = limits().max_random_length
        if len(digits) > 6 or int(digits) > limit:  # checked before int() of a huge number
            shown = digits[:12] + ("..." if len(digits) > 12 else "")
            self.problems.add(self.pos(line, col), f"limit: random({shown}) is longer than "
                              f"{limit} characters (ORBIS_MAX_RANDOM_LENGTH)")  # fmt: skip
            return ""
        return random_text(int(digits))

    def _at(self) -> None:
        text = self.text
        if text.startswith("@begin", self.i):
            self.add("BEGIN", "@begin", self.i)
            self.i += len("@begin")
            self._recipe()
        elif text.startswith("@end", self.i):
            self.add("ENDRECIPE", "@end", self.i)
            self.i += len("@end")
        elif m := _INPUT.match(text, self.i):
            self.problems.add(
                self.pos(self.line, self._col(self.i)),
                f"parametric value {m.group()} was not replaced",
                "the IM client replaces @input.NAME@ before sending; give a value",
            )
            self.i = m.end()
        else:
            self._illegal("@")

    def _recipe(self) -> None:
        """Raw mode: whole lines up to one that starts at column 0 with @end (reference §1.4)."""
        text, start = self.text, self.i
        line, col = self.line, self._col(start)
        m = _RECIPE_END.search(text, start)
        if m is None:
            hint = "@end must start at column 0; an indented @end is recipe text"
            self.problems.add(self.pos(line, col - len("@begin")), "recipe not closed", hint)
            end = len(text)
        else:
            end = m.start()
        self.tokens.append(Token("RECIPE", text[start:end], line, col, text[start:end]))
        self._newlines(start, end)
        self.i = end


def tokenize(text: str, file: str, problems: Problems) -> list[Token]:
    return Lexer(text, file, problems).run()
