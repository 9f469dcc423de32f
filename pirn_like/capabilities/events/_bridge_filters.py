"""Which events a bridge sends: a typed predicate on payload fields, or a callable.

``Field("status") == "open"`` builds a ``Condition``; conditions combine with ``&``,
``|`` and ``~``. A condition is plain data, so it hashes the same in every process and
enters the ``BridgePush`` knot's config hash by what it says, not by where it was made.
"""

from __future__ import annotations

import enum
import operator
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pirn_like.capabilities.events._bridge_errors import BridgeFilterError
from pirn_like.capabilities.events._bridge_protocol import idempotency_key
from pirn_like.core._identity import callable_identity

if TYPE_CHECKING:
    from pirn_like.capabilities.events._models import Event

__all__ = ["Condition", "EventPredicate", "Field", "predicate_identity"]

Scalar = str | int | float | bool | None
_SCALARS = (str, int, float, bool, type(None))


class _Op(enum.StrEnum):
    EQ = "=="
    NE = "!="
    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="
    IN = "in"
    EXISTS = "exists"
    AND = "&"
    OR = "|"
    NOT = "~"


_COMPARE: dict[_Op, Callable[[Any, Any], bool]] = {
    _Op.EQ: operator.eq,
    _Op.NE: operator.ne,
    _Op.LT: operator.lt,
    _Op.LE: operator.le,
    _Op.GT: operator.gt,
    _Op.GE: operator.ge,
}
_MISSING = object()


def _scalar(path: str, value: object) -> Scalar:
    if not isinstance(value, _SCALARS):
        raise TypeError(
            f"Field({path!r}) compares with str, int, float, bool or None, "
            f"not {type(value).__name__}: {value!r}"
        )
    return value


@dataclass(frozen=True, slots=True)
class Condition:
    """A predicate on an event's payload, built from ``Field`` comparisons.

    ``matches(event)`` is False when a compared field is missing (for ``!=`` too: use
    ``Field(...).exists()`` to test presence). Ordering a field against a value of
    another type (``"3" > 2``) raises ``BridgeFilterError``: the push stops rather than
    silently skipping events.
    """

    op: _Op
    path: str = ""
    value: Scalar | tuple[Scalar, ...] = None
    operands: tuple[Condition, ...] = ()

    def __and__(self, other: Condition) -> Condition:
        return Condition(_Op.AND, operands=(self, _condition(other)))

    def __or__(self, other: Condition) -> Condition:
        return Condition(_Op.OR, operands=(self, _condition(other)))

    def __invert__(self) -> Condition:
        return Condition(_Op.NOT, operands=(self,))

    def __str__(self) -> str:
        match self.op:
            case _Op.AND | _Op.OR:
                return f"({self.operands[0]} {self.op} {self.operands[1]})"
            case _Op.NOT:
                return f"~({self.operands[0]})"
            case _Op.EXISTS:
                return f"Field({self.path!r}).exists()"
            case _Op.IN:
                return f"Field({self.path!r}).isin({list(self.value)!r})"  # type: ignore[arg-type]
            case _:
                return f"Field({self.path!r}) {self.op} {self.value!r}"

    def matches(self, event: Event) -> bool:
        """True if ``event``'s payload satisfies this condition."""
        return self._test(event.payload, event)

    def _test(self, payload: Mapping[str, Any], event: Event) -> bool:
        match self.op:
            case _Op.AND:
                return all(c._test(payload, event) for c in self.operands)
            case _Op.OR:
                return any(c._test(payload, event) for c in self.operands)
            case _Op.NOT:
                return not self.operands[0]._test(payload, event)
            case _:
                pass
        found = _lookup(payload, self.path)
        if self.op is _Op.EXISTS:
            return found is not _MISSING
        if found is _MISSING:
            return False
        if self.op is _Op.IN:
            assert isinstance(self.value, tuple)
            return found in self.value
        try:
            return bool(_COMPARE[self.op](found, self.value))
        except TypeError:
            raise BridgeFilterError(
                f"cannot evaluate {self} on event {idempotency_key(event)} "
                f"(seq {event.seq}): its {self.path!r} is {found!r}, a "
                f"{type(found).__name__}; compare it with a value of that type"
            ) from None


def _condition(other: object) -> Condition:
    if not isinstance(other, Condition):
        raise TypeError(
            f"conditions combine with other conditions (Field(...) == ...), not {other!r}"
        )
    return other


def _lookup(payload: Mapping[str, Any], path: str) -> Any:
    found: Any = payload
    for part in path.split("."):
        if not isinstance(found, Mapping) or part not in found:
            return _MISSING
        found = found[part]  # pyright: ignore[reportUnknownVariableType]
    return found  # pyright: ignore[reportUnknownVariableType]


class Field:
    """A field of an event's payload, by name or dotted path (``"customer.country"``).

    Compare it with a JSON scalar to get a ``Condition``: ``Field("status") == "open"``,
    ``Field("amount") >= 100``, ``Field("region").isin(["eu", "uk"])``,
    ``Field("deleted_by").exists()``.
    """

    __slots__ = ("path",)

    def __init__(self, path: str) -> None:
        if not isinstance(path, str) or not path or "" in path.split("."):
            raise ValueError(f"Field needs a field name or dotted path, got {path!r}")
        self.path = path

    def __repr__(self) -> str:
        return f"Field({self.path!r})"

    def _compare(self, op: _Op, value: object) -> Condition:
        return Condition(op, self.path, _scalar(self.path, value))

    def __eq__(self, value: object) -> Condition:  # type: ignore[override]
        return self._compare(_Op.EQ, value)

    def __ne__(self, value: object) -> Condition:  # type: ignore[override]
        return self._compare(_Op.NE, value)

    def __lt__(self, value: object) -> Condition:
        return self._compare(_Op.LT, value)

    def __le__(self, value: object) -> Condition:
        return self._compare(_Op.LE, value)

    def __gt__(self, value: object) -> Condition:
        return self._compare(_Op.GT, value)

    def __ge__(self, value: object) -> Condition:
        return self._compare(_Op.GE, value)

    __hash__ = None  # type: ignore[assignment]  # == builds a condition, so no hashing

    def isin(self, values: Iterable[object]) -> Condition:
        """The field equals one of ``values``."""
        if isinstance(values, str | bytes):
            raise TypeError(f"Field({self.path!r}).isin takes a list of values, not {values!r}")
        return Condition(_Op.IN, self.path, tuple(_scalar(self.path, v) for v in values))

    def exists(self) -> Condition:
        """The payload has this field (even if it is null)."""
        return Condition(_Op.EXISTS, self.path)


EventPredicate = Condition | Callable[["Event"], bool]
"""What ``Bridge(where=...)`` takes: a ``Condition``, or a function of the event."""


def predicate_identity(where: EventPredicate | None) -> str | None:
    """A stable text for a knot's config hash: the condition as written, or the
    callable's identity (name, source and captured values)."""
    if where is None:
        return None
    if isinstance(where, Condition):
        return str(where)
    if callable(where):
        return callable_identity(where)
    raise TypeError(
        f"where= takes a condition (Field('status') == 'open') or a function of the event, "
        f"not {where!r}"
    )
