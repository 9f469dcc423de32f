"""Three-way knot results: ``Ok``, ``Err`` and ``Skipped``."""

import enum
import traceback as _traceback
from dataclasses import dataclass
from typing import Generic, TypeAlias, TypeVar

from pydantic import BaseModel, ConfigDict

from pirn_like.core._hashing import combine_hashes

__all__ = ["Err", "ExceptionRecord", "Ok", "Outcome", "Result", "SkipReason", "Skipped"]

T = TypeVar("T")


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
