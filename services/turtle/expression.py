# -*- test-case-name: tests.test_turtle_files -*-
"""Boolean file-search expressions as turtle regexp searches carry them, evaluated the way
RetroShare 0.6.7 evaluates them (``RsRegularExpression``).

The expression arrives linearised (`RegexpExpression`): a prefix list of token bytes, the
integer operands and the string operands, read in step.  Tokens: 0 date, 1 popularity,
2 size, 3 hash, 4 name, 5 path, 6 extension, 7 compound (and/or/xor of the next two),
8 size in MiB.  A relation reads (operator, low, high); a string test reads (operator,
ignore case, count) then that many strings.  RetroShare's quirks are kept, since a search
must match what a RetroShare node would answer: relations compare the operand to the value
(``Greater`` is "low > value"), a path test tests the extension, and "equals" ignores the
ignore-case flag.  Anything malformed raises `ExpressionError`, and the search gets no
local answer.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Final

from pqi.items.turtle import RegexpExpression
from pqi.wire.errors import DecodeError

__all__ = ["ExpressionError", "compile_expression", "FileFacts", "MAX_EXPRESSION_DEPTH"]

#: Nesting of compound tests we follow at most (RetroShare has no bound).
MAX_EXPRESSION_DEPTH: Final = 32

_DATE, _POP, _SIZE, _HASH, _NAME, _PATH, _EXT, _COMP, _SIZE_MB = range(9)


class ExpressionError(DecodeError):
    """A linearised expression that does not read (operands missing, bad token, too deep)."""


@dataclasses.dataclass(frozen=True)
class FileFacts:
    """What an expression can test about a file."""

    name: str
    size: int
    hash_hex: str
    modified: int = 0
    popularity: int = 0


Predicate = Callable[[FileFacts], bool]


class _Reader:
    def __init__(self, e: RegexpExpression) -> None:
        self.e = e
        self.tok = self.i = self.s = 0

    def token(self) -> int:
        if self.tok >= len(self.e.tokens):
            raise ExpressionError("expression ends before its last token")
        self.tok += 1
        return self.e.tokens[self.tok - 1]

    def int(self) -> int:
        if self.i >= len(self.e.ints):
            raise ExpressionError("expression ends before its integer operands")
        self.i += 1
        return self.e.ints[self.i - 1]

    def string(self) -> str:
        if self.s >= len(self.e.strings):
            raise ExpressionError("expression ends before its string operands")
        self.s += 1
        return self.e.strings[self.s - 1]


def _signed(v: int) -> int:
    return v - (1 << 32) if v >= 1 << 31 else v


def _relation(r: _Reader, value: Callable[[FileFacts], int]) -> Predicate:
    op, low, high = r.int(), _signed(r.int()), _signed(r.int())
    tests: dict[int, Callable[[int], bool]] = {
        0: lambda v: low == v, 1: lambda v: low >= v, 2: lambda v: low > v,
        3: lambda v: low <= v, 4: lambda v: low < v, 5: lambda v: low <= v <= high}
    if op not in tests:
        raise ExpressionError(f"unknown relation {op}")
    test = tests[op]
    return lambda f: test(value(f))


def _strings(r: _Reader, value: Callable[[FileFacts], str | None]) -> Predicate:
    op, ignore_case, n = r.int(), bool(r.int()), r.int()
    if n > len(r.e.strings):
        raise ExpressionError(f"{n} strings announced, {len(r.e.strings)} carried")
    terms = [r.string() for _ in range(n)]

    def contains(text: str, term: str) -> bool:
        return (term.casefold() in text.casefold()) if ignore_case else term in text

    def test(f: FileFacts) -> bool:
        text = value(f)
        if text is None:
            return False
        if op == 0:
            return any(contains(text, t) for t in terms)
        if op == 1:
            return all(contains(text, t) for t in terms)
        return any(text == t for t in terms)  # RetroShare's "equals" is case-sensitive

    if op not in (0, 1, 2):
        raise ExpressionError(f"unknown string test {op}")
    return test


def _extension(f: FileFacts) -> str | None:
    dot = f.name.rfind(".")
    return f.name[dot + 1:] or None if dot >= 0 else None


def _read(r: _Reader, depth: int) -> Predicate:
    if depth > MAX_EXPRESSION_DEPTH:
        raise ExpressionError(f"expression nested deeper than {MAX_EXPRESSION_DEPTH}")
    tok = r.token()
    if tok == _DATE:
        return _relation(r, lambda f: f.modified)
    if tok == _POP:
        return _relation(r, lambda f: f.popularity)
    if tok == _SIZE:
        return _relation(r, lambda f: min(f.size, (1 << 31) - 1))
    if tok == _SIZE_MB:
        return _relation(r, lambda f: f.size >> 20)
    if tok == _HASH:
        return _strings(r, lambda f: f.hash_hex)
    if tok == _NAME:
        return _strings(r, lambda f: f.name)
    if tok in (_PATH, _EXT):
        return _strings(r, _extension)
    if tok == _COMP:
        op = r.int()
        left, right = _read(r, depth + 1), _read(r, depth + 1)
        if op == 0:
            return lambda f: left(f) and right(f)
        if op == 1:
            return lambda f: left(f) or right(f)
        if op == 2:
            return lambda f: left(f) != right(f)
        raise ExpressionError(f"unknown logical operator {op}")
    raise ExpressionError(f"unknown expression token {tok}")


def compile_expression(expression: RegexpExpression) -> Predicate:
    """A predicate over `FileFacts` for a linearised expression; `ExpressionError` when it
    does not read."""
    return _read(_Reader(expression), 0)
