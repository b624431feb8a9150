"""Recursive-descent parser: tokens → `ast.Document` (grammar: reference §1.2, docs/radl.md).

Syntax errors stop the parse (the rest could only produce noise); the lexer's problems are
reported together with the first syntax error.
"""

from __future__ import annotations

from orbis.lang.errors import Problems, TemplateError, suggest
from orbis.lang.radl.ast import (
    Configure,
    Contextualize,
    CtxItem,
    Deploy,
    Document,
    Feature,
    Section,
    SectionRef,
    Soft,
)
from orbis.lang.radl.lexer import KEYWORDS, Token, tokenize
from orbis.lang.radl.units import unit_factor
from orbis.model.infrastructure import Position

INHERIT = "ec3_inherit_from"  # EC3: a copy of another system or network, then overrides
SENTENCES = ("description", "network", "system", "ansible", "configure", "contextualize", "deploy")


class _Stop(Exception):
    """A syntax error was recorded; unwind to the top."""


class Parser:
    def __init__(self, text: str, file: str, problems: Problems) -> None:
        self.file, self.problems = file, problems
        self.tokens = tokenize(text, file, problems)
        self.k = 0

    # -- token helpers ------------------------------------------------------------------
    @property
    def tok(self) -> Token:
        return self.tokens[self.k]

    def pos(self, token: Token | None = None) -> Position:
        t = token or self.tok
        return Position(self.file, t.line, t.col)

    def next(self) -> Token:
        token = self.tokens[self.k]
        if token.kind != "END":
            self.k += 1
        return token

    def at(self, kind: str, text: str | None = None) -> bool:
        return self.tok.kind == kind and (text is None or self.tok.text == text)

    def keyword(self, word: str) -> bool:
        if self.at("KEYWORD", word):
            self.k += 1
            return True
        return False

    def fail(self, message: str, hint: str = "", token: Token | None = None) -> _Stop:
        self.problems.add(self.pos(token), message, hint)
        return _Stop()

    def expect(self, kind: str, what: str, hint: str = "") -> Token:
        if self.tok.kind != kind:
            if self.tok.kind == "KEYWORD" and kind == "ID":
                hint = hint or f"'{self.tok.text}' is a reserved word and cannot be a name"
            raise self.fail(f"expected {what}, found {self.tok.describe()}", hint)
        return self.next()

    # -- document -----------------------------------------------------------------------
    def parse(self) -> Document:
        doc = Document(self.file)
        try:
            while not self.at("END"):
                self.sentence(doc)
        except _Stop:
            pass
        return doc

    def sentence(self, doc: Document) -> None:
        t = self.tok
        if t.kind != "KEYWORD" or t.text not in SENTENCES:
            hint = ""
            if t.kind == "ID" and t.text.lower() in SENTENCES:
                hint = "keywords are lowercase"
            elif t.kind == "ID":
                hint = suggest(t.text, SENTENCES)
            expected = "a sentence (" + ", ".join(SENTENCES) + ")"
            raise self.fail(f"expected {expected}, found {t.describe()}", hint)
        self.next()
        if t.text == "configure":
            doc.configures.append(self.configure(t))
        elif t.text == "contextualize":
            doc.contextualizes.append(self.contextualize(t))
        elif t.text == "deploy":
            doc.deploys.append(self.deploy(t))
        else:
            doc.sections.append(self.section(t))

    def section(self, keyword: Token) -> Section:
        name = self.expect("ID", f"a {keyword.text} name")
        if not self.at("("):
            if keyword.text == "ansible":
                raise self.fail("an ansible section needs ( … )", "ansible has no reference form")
            return Section(keyword.text, name.text, None, self.pos(name))
        self.next()
        features = self.features()
        self.close(keyword.text, name)
        return Section(keyword.text, name.text, features, self.pos(name))

    def close(self, what: str, opener: Token) -> None:
        if not self.at(")"):
            hint = "join features with 'and'" if self.at("ID") else ""
            raise self.fail(
                f"expected 'and' or ')' in {what} '{opener.text}', found {self.tok.describe()}",
                hint,
            )
        self.next()

    # -- features -----------------------------------------------------------------------
    def features(self) -> list[Feature | Soft]:
        out: list[Feature | Soft] = []
        if self.at(")"):
            return out
        out.append(self.feature())
        while self.keyword("and"):
            out.append(self.feature())
        return out

    def feature(self) -> Feature | Soft:
        if self.at("KEYWORD", "soft"):
            start = self.next()
            weight = self.expect("NUMBER", "the weight of the soft group")
            self.expect("(", "'(' after soft's weight")
            subs = self.features()
            self.close("soft group", start)
            plain = [f for f in subs if isinstance(f, Feature)]
            if len(plain) != len(subs):
                raise self.fail("soft groups cannot be nested", token=start)
            return Soft(weight.value, plain, self.pos(start))  # type: ignore[arg-type]
        name = self.expect("ID", "a feature name")
        where = self.pos(name)
        if self.keyword("contains"):
            self.expect("(", "'(' after contains")
            subs = self.features()
            self.close("contains", name)
            return Feature(name.text, "contains", subs, where)
        if not self.at("OP"):
            hint = "RADL compares with = <= >= < > or 'contains'"
            raise self.fail(f"expected an operator after '{name.text}'", hint)
        op = {"<": "<=", ">": ">="}.get(self.tok.text, self.tok.text)
        self.next()
        return self.value(name.text, op, where)

    def value(self, name: str, op: str, where: Position) -> Feature:
        t = self.tok
        if t.kind == "NUMBER":
            self.next()
            unit = None
            if self.at("ID"):
                unit_token = self.next()
                if self.at("OP"):  # `a = 2 b = 3`: the "unit" is the next feature's name
                    raise self.fail(f"missing 'and' before '{unit_token.text}'", token=unit_token)
                unit = unit_token.text
            factor = unit_factor(unit) if unit else 1
            # as IM's JSON form: multiplied by the unit's factor; unknown units count as 1
            value = t.value * factor if factor else t.value  # type: ignore[operator]
            if isinstance(value, float) and unit and factor and factor > 1 and value.is_integer():
                value = int(value)  # 1.5G is a whole number of bytes
            return Feature(name, op, value, where, unit, t.text)
        if t.kind == "STRING":
            self.next()
            return Feature(name, op, t.value, where)
        if t.kind == "[":
            self.next()
            items: list[str] = []
            while not self.at("]"):
                if items:
                    self.expect(",", "',' or ']' in the list")
                item = self.expect("STRING", "a quoted string (lists hold strings only)")
                items.append(str(item.value))
            self.next()
            return Feature(name, op, items, where)
        if t.kind == "KEYWORD" and t.text in ("system", "network") and name == INHERIT:
            self.next()  # EC3's `ec3_inherit_from = system wn`
            target = self.expect("ID", f"the {t.text} to inherit from")
            return Feature(name, op, SectionRef(t.text, target.text), where)
        hint = "quote strings with '…'" if t.kind == "ID" else ""
        if t.kind == "KEYWORD" and t.text in ("system", "network"):
            hint = f"only {INHERIT} takes a '{t.text} NAME' value"
        raise self.fail(f"expected a value for '{name}', found {t.describe()}", hint)

    # -- configure / contextualize / deploy ----------------------------------------------
    def configure(self, keyword: Token) -> Configure:
        name = self.expect("ID", "a configure name")
        where = self.pos(name)
        if not self.at("("):
            return Configure(name.text, None, True, where)
        self.next()
        recipe, recipe_pos = None, None
        if self.at("BEGIN"):
            self.next()
            body = self.expect("RECIPE", "recipe text")
            recipe, recipe_pos = str(body.value), self.pos(body)
            self.expect("ENDRECIPE", "@end at column 0")
        elif not self.at(")"):
            raise self.fail(
                f"expected @begin or ')' in configure '{name.text}', found {self.tok.describe()}",
                "a configure holds one recipe between @begin and @end",
            )
        self.close("configure", name)
        return Configure(name.text, recipe, False, where, recipe_pos)

    def number(self, what: str, integer: bool = True) -> Token:
        t = self.expect("NUMBER", what)
        if integer and not isinstance(t.value, int):
            raise self.fail(f"{what} must be a whole number, found {t.text}", token=t)
        return t

    def contextualize(self, keyword: Token) -> Contextualize:
        ctx = Contextualize(pos=self.pos(keyword))
        if self.at("NUMBER"):
            ctx.max_time = self.number("max_time (seconds)").value  # type: ignore[assignment]
        self.expect("(", "'(' after contextualize")
        while self.keyword("option"):
            name = self.expect("ID", "an option name")
            self.expect("OP", "'=' after the option name")
            value = self.tok
            if value.kind not in ("STRING", "NUMBER"):
                raise self.fail(f"expected a string or number for option '{name.text}'")
            self.next()
            ctx.options[name.text] = value.value
        while self.at("KEYWORD", "system"):
            start = self.next()
            system = self.expect("ID", "a system name")
            if not self.keyword("configure"):
                raise self.fail("expected 'configure' after the system name")
            configure = self.expect("ID", "a configure name")
            item = CtxItem(system.text, configure.text, pos=self.pos(start))
            if self.keyword("step"):
                item.step = self.number("the step").value  # type: ignore[assignment]
            elif self.keyword("with"):
                item.tool = self.expect("ID", "a tool name (Ansible or cloud_init)").text
            if self.at("KEYWORD", "step") or self.at("KEYWORD", "with"):
                raise self.fail("'step' and 'with' cannot be combined in one item")
            ctx.items.append(item)
        if self.at("KEYWORD", "option"):
            raise self.fail("options must come before the first 'system … configure …' item")
        if not self.at(")"):
            hint = "items read 'system X configure Y [step N | with TOOL]'"
            raise self.fail(
                f"expected an item or ')' in contextualize, found {self.tok.describe()}", hint
            )
        self.next()
        return ctx

    def deploy(self, keyword: Token) -> Deploy:
        system = self.expect("ID", "the system to deploy")
        count = self.number("the number of machines")
        cloud = None
        if self.at("ID"):
            cloud = self.next().text
        elif self.at("STRING"):
            raise self.fail("the cloud id in deploy is a bare name", "write it without quotes")
        return Deploy(system.text, count.value, cloud, self.pos(keyword))  # type: ignore[arg-type]


def parse_document(text: str, file: str, problems: Problems | None = None) -> Document:
    """Parse RADL text; raises TemplateError on any lexical or syntax problem."""
    problems = problems if problems is not None else Problems()
    parser = Parser(text, file, problems)
    if problems.problems:  # a lexical error makes any syntax error after it noise
        raise TemplateError(problems.problems)
    doc = parser.parse()
    if problems.problems:
        raise TemplateError(problems.problems)
    return doc


__all__ = ["KEYWORDS", "Parser", "parse_document"]
