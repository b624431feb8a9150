"""Problems found while reading a template, reported all at once with file:line:col positions."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field

from orbis.model.infrastructure import Position


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a template; `hint` suggests a fix (may be empty)."""

    position: Position | None
    message: str
    hint: str = ""

    def __str__(self) -> str:
        text = f"{self.position}: {self.message}" if self.position else self.message
        return f"{text} (hint: {self.hint})" if self.hint else text


class TemplateError(Exception):
    """A template that cannot be loaded; `problems` lists every problem found (at least one)."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: list[Problem] = list(problems)
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.problems)


def suggest(word: str, candidates: Iterable[str]) -> str:
    """A 'did you mean ...?' hint for a misspelt name, or ''."""
    pool = [c for c in candidates if isinstance(c, str)]
    close = difflib.get_close_matches(word, pool, n=1, cutoff=0.6)
    if not close:
        # Dotted type names: compare the last segment too (Compte vs tosca.nodes.Compute).
        tails = {c.rsplit(".", 1)[-1]: c for c in pool}
        tail = difflib.get_close_matches(word.rsplit(".", 1)[-1], list(tails), n=1, cutoff=0.75)
        close = [tails[tail[0]]] if tail else []
    return f"did you mean '{close[0]}'?" if close else ""


@dataclass
class Problems:
    """Collects problems and warnings while loading; `check()` raises if any problem was found."""

    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def add(self, position: Position | None, message: str, hint: str = "") -> None:
        problem = Problem(position, message, hint)
        if (
            problem not in self.problems
        ):  # the same value may be visited twice (e.g. via get_property)
            self.problems.append(problem)

    def warn(self, position: Position | None, message: str) -> None:
        text = str(Problem(position, message))
        if text not in self.warnings:
            self.warnings.append(text)

    def check(self) -> None:
        if self.problems:
            raise TemplateError(self.problems)
