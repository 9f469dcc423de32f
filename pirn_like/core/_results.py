"""Three-way knot results: ``Ok``, ``Err`` and ``Skipped``."""

import enum
import traceback as _traceback
from dataclasses import dataclass
from typing import Generic, TypeAlias, TypeVar

from pydantic import BaseModel, ConfigDict

from pirn_like.core._hashing import combine_hashes

__all__ = [
    "STORED_MESSAGE_CHARS",
    "STORED_TRACEBACK_CHARS",
    "Err",
    "ExceptionRecord",
    "Ok",
    "Outcome",
    "Result",
    "SkipReason",
    "Skipped",
]

T = TypeVar("T")

STORED_MESSAGE_CHARS = 8 * 1024
"""At most this many characters of an exception's message are kept in history (its start)."""
STORED_TRACEBACK_CHARS = 64 * 1024
"""At most this many characters of a traceback are kept in history (its end, where the
exception was raised)."""


class Outcome(enum.StrEnum):
    """How one knot execution ended."""

    OK = "ok"
    ERR = "err"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"


class SkipReason(enum.StrEnum):
    """Why a knot did not run."""

    PARENT_FAILED = "parent_failed"
    PARENT_SKIPPED = "parent_skipped"
    GATE_CLOSED = "gate_closed"
    BRANCH_NOT_SELECTED = "branch_not_selected"
    OPTIONAL_FAILED = "optional_failed"
    BY_KNOT = "by_knot"


class ExceptionRecord(BaseModel):
    """A failure, as data: safe to store, compare and send over the wire.

    ``id`` is stable: the same exception type and message raised by the same knot
    always get the same id, across runs and machines.
    """

    model_config = ConfigDict(frozen=True, defer_build=True)

    id: str
    type: str
    message: str
    traceback: str
    knot_id: str | None = None

    @classmethod
    def from_exception(cls, exc: BaseException, *, knot_id: str | None = None) -> "ExceptionRecord":
        """Capture ``exc`` with its traceback text."""
        exc_type = type(exc)
        # A failure on a remote worker keeps the remote exception's type name.
        type_name: str = getattr(exc, "remote_type", None) or (
            f"{exc_type.__module__}.{exc_type.__qualname__}"
        )
        message = str(exc)
        tb = "".join(_traceback.format_exception(exc))
        return cls.model_construct(
            id=combine_hashes((type_name, message, knot_id or "")),
            type=type_name,
            message=message,
            traceback=tb,
            knot_id=knot_id,
        )

    def capped(self) -> "ExceptionRecord":
        """This record as history keeps it: the message cut to ``STORED_MESSAGE_CHARS``
        and the traceback to ``STORED_TRACEBACK_CHARS``, each saying how much was cut, so
        one pathological error cannot bloat history. ``id`` is unchanged."""
        message = _cut(self.message, STORED_MESSAGE_CHARS, keep_end=False)
        traceback = _cut(self.traceback, STORED_TRACEBACK_CHARS, keep_end=True)
        if message is self.message and traceback is self.traceback:
            return self
        return self.model_copy(update={"message": message, "traceback": traceback})


def _cut(text: str, limit: int, *, keep_end: bool) -> str:
    """``text`` itself if it fits in ``limit`` characters, else its start (or end) and a
    line saying how many characters were cut, ``limit`` characters in all."""
    if len(text) <= limit:
        return text
    # The note's length depends on the count it states: size it for the largest count.
    kept = max(limit - len(_cut_note(len(text))), 0)
    note = _cut_note(len(text) - kept)
    return note + text[len(text) - kept :] if keep_end else text[:kept] + note


def _cut_note(count: int) -> str:
    return f"\n[... {count} characters cut ...]\n"


@dataclass(frozen=True, slots=True)
class Ok(Generic[T]):
    """A knot succeeded with ``value``."""

    value: T

    @property
    def outcome(self) -> Outcome:
        return Outcome.OK


@dataclass(frozen=True, slots=True)
class Err:
    """A knot failed; ``record`` says how."""

    record: ExceptionRecord

    @property
    def outcome(self) -> Outcome:
        return Outcome.ERR


@dataclass(frozen=True, slots=True)
class Skipped:
    """A knot did not run; ``reason`` says why and ``detail`` adds the specifics."""

    reason: SkipReason
    detail: str = ""

    @property
    def outcome(self) -> Outcome:
        return Outcome.SKIPPED


Result: TypeAlias = Ok[T] | Err | Skipped
