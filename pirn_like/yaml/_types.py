"""The parameter types a pipeline may name, and a small parser for type expressions.

``type_`` is a name from ``TYPE_NAMES`` or an expression over those names:
``list[int]``, ``dict[str, float]``, ``tuple[int, ...]``, ``int | None``,
``Optional[int]``, ``Literal['a', 'b', 1]``. The parser only looks names up in the
table and builds generics with the standard operators, so a ``type_`` can never
import or evaluate anything.
"""

from __future__ import annotations

import datetime
import decimal
import functools
import operator
import re
import types
from typing import Any, Literal, Optional, Union, get_args, get_origin

__all__ = ["TYPE_NAMES", "TypeSyntaxError", "parse_type", "type_name"]

TYPE_NAMES: dict[str, Any] = {
    "object": object,
    "any": object,
    "int": int,
    "float": float,
    "str": str,
    "bool": bool,
    "bytes": bytes,
    "list": list,
    "dict": dict,
    "tuple": tuple,
    "set": set,
    "frozenset": frozenset,
    "decimal": decimal.Decimal,
    "date": datetime.date,
    "datetime": datetime.datetime,
    "time": datetime.time,
    "timedelta": datetime.timedelta,
}
# How many type arguments each generic takes (None: one or more; tuple also takes `...`).
_GENERICS: dict[str, int | None] = {
    "list": 1,
    "set": 1,
    "frozenset": 1,
    "dict": 2,
    "tuple": None,
}
_TOKEN = re.compile(
    r"\s*(?:(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<str>'[^'\\]*'|\"[^\"\\]*\")"
    r"|(?P<int>-?[0-9]+)|(?P<ellipsis>\.\.\.)|(?P<op>[\[\],|]))"
)


class TypeSyntaxError(ValueError):
    """A ``type_`` expression the parser refuses; the message says what it expected."""


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        while pos < len(text.rstrip()):
            match = _TOKEN.match(text, pos)
            if match is None or match.lastgroup is None:
                raise TypeSyntaxError(f"unexpected {text[pos:].strip()[:10]!r}")
            self.tokens.append((match.lastgroup, match[match.lastgroup]))
            pos = match.end()
        self.at = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self, value: str) -> bool:
        if self.peek() == ("op", value):
            self.at += 1
            return True
        return False

    def expect(self, value: str) -> None:
        if not self.take(value):
            found = self.peek()
            raise TypeSyntaxError(f"expected {value!r}, found {found[1] if found else 'the end'!r}")

    def parse(self) -> Any:
        tp = self.union()
        extra = self.peek()
        if extra is not None:
            raise TypeSyntaxError(f"unexpected {extra[1]!r} after a complete type")
        return tp

    def union(self) -> Any:
        members = [self.atom()]
        while self.take("|"):
            members.append(self.atom())
        return members[0] if len(members) == 1 else functools.reduce(operator.or_, members)

    def arguments(self) -> list[Any]:
        self.expect("[")
        args = [self.union()]
        while self.take(","):
            args.append(self.union())
        self.expect("]")
        return args

    def atom(self) -> Any:
        token = self.peek()
        if token is None or token[0] != "name":
            found = token[1] if token else "the end"
            raise TypeSyntaxError(f"expected a type name, found {found!r}")
        self.at += 1
        name = token[1]
        if name == "None":
            return type(None)
        if name == "Literal":
            return self.literal()
        if name == "Optional":
            (inner,) = self._count(name, self.arguments(), 1)
            return Optional[inner]  # noqa: UP045 - the value of the YAML's own spelling
        tp = TYPE_NAMES.get(name)
        if tp is None:
            raise TypeSyntaxError(f"unknown type name {name!r}")
        if self.peek() != ("op", "["):
            return tp
        if name not in _GENERICS:
            raise TypeSyntaxError(f"{name} takes no type arguments")
        return tp[tuple(self._count(name, self.generic_arguments(name), _GENERICS[name]))]

    def generic_arguments(self, name: str) -> list[Any]:
        if name != "tuple":
            return self.arguments()
        self.expect("[")
        args = [self.union()]
        if self.take(","):
            if self.peek() == ("ellipsis", "..."):
                self.at += 1
                args.append(Ellipsis)
            else:
                args.append(self.union())
                while self.take(","):
                    args.append(self.union())
        self.expect("]")
        return args

    def literal(self) -> Any:
        self.expect("[")
        values: list[object] = []
        while True:
            token = self.peek()
            if token is None or token[0] not in ("str", "int", "name"):
                raise TypeSyntaxError("Literal takes quoted strings, integers, True/False/None")
            self.at += 1
            kind, text = token
            if kind == "str":
                values.append(text[1:-1])
            elif kind == "int":
                values.append(int(text))
            elif text in ("True", "False", "None"):
                values.append({"True": True, "False": False, "None": None}[text])
            else:
                raise TypeSyntaxError(f"Literal values are quoted: write '{text}'")
            if not self.take(","):
                break
        self.expect("]")
        return Literal.__getitem__(tuple(values))  # pyright: ignore[reportAttributeAccessIssue]

    @staticmethod
    def _count(name: str, args: list[Any], wanted: int | None) -> list[Any]:
        if wanted is not None and len(args) != wanted:
            raise TypeSyntaxError(f"{name}[...] takes {wanted} type argument(s), got {len(args)}")
        return args


def parse_type(text: str) -> Any:
    """The type ``text`` names; ``TypeSyntaxError`` says why it cannot."""
    if not text.strip():
        raise TypeSyntaxError("the type is empty")
    return _Parser(text).parse()


def type_name(tp: Any) -> str | None:
    """The expression ``parse_type`` reads back as ``tp``, or None when it cannot."""
    if tp is type(None):
        return "None"
    for name, candidate in TYPE_NAMES.items():
        if candidate is tp and name != "any":
            return name
    origin, args = get_origin(tp), get_args(tp)
    if origin is Literal:
        if not all(type(a) in (str, int, bool, type(None)) for a in args):
            return None
        shown = (repr(a) if isinstance(a, str) else str(a) for a in args)
        return f"Literal[{', '.join(shown)}]"
    if origin in (Union, types.UnionType):
        parts = [type_name(a) for a in args]
        return None if None in parts else " | ".join(p for p in parts if p)
    base = type_name(origin) if origin is not None else None
    if base not in _GENERICS:
        return None
    parts = ["..." if a is Ellipsis else type_name(a) for a in args]
    return None if None in parts else f"{base}[{', '.join(p for p in parts if p)}]"
