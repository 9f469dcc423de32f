"""The pirn_like exception tree.

::

    PirnLikeError
    ├── KnotDefinitionError (TypeError)   a Knot class or @knot function cannot be used
    ├── WiringError (ValueError)          a tapestry is wired wrongly
    │   └── CycleError                    the graph has a ring (named in the message)
    ├── PipelineError (ValueError)        a YAML pipeline is malformed (file, line, column)
    ├── ParameterError (ValueError)       a RunRequest's parameters do not fit the tapestry
    ├── DuplicateRunError (ValueError)    a RunRequest reuses a run id already in history
    ├── UnhashableValueError (TypeError)  a value has no codec for content hashing
    ├── KnotTimeoutError (TimeoutError)   a knot passed its deadline
    ├── ParentFailedError                 a parent failed under REQUIRE_ALL_PARENTS
    ├── MapItemsFailedError               items of a Map / ZipMap / DictMap failed
    ├── SubTapestryError                  the inner run of a SubTapestry failed
    ├── MissingExtraError (ImportError)   an optional dependency is not installed
    ├── ClosedResourceError (RuntimeError) a backend, dispatcher or tapestry was used after close
    ├── BackendError                      a backend cannot be opened or used (URL redacted)
    │   └── SchemaVersionError            a database was written by a newer pirn_like
    ├── SerializationError (TypeError)    a value cannot be stored, or stored bytes cannot be read
    │   └── UntrustedPayloadError         a pickled payload is unsigned, tampered or not opted in
    ├── ResumeError                       a run cannot be resumed (unknown, finished, no values)
    ├── SignatureError (ValueError)       a signed request's signature is missing, wrong or too old
    ├── RemoteKnotError                   a remote knot failed with an exception not rebuilt here
    └── WorkerLostError                   the worker running a knot died or became unreachable

Every message says what is wrong, with the offending value, and how to fix it.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "BackendError",
    "ClosedResourceError",
    "CycleError",
    "DuplicateRunError",
    "KnotDefinitionError",
    "KnotTimeoutError",
    "MapItemsFailedError",
    "MissingExtraError",
    "ParameterError",
    "ParentFailedError",
    "PipelineError",
    "PirnLikeError",
    "RemoteKnotError",
    "ResumeError",
    "SchemaVersionError",
    "SerializationError",
    "SignatureError",
    "SubTapestryError",
    "UnhashableValueError",
    "UntrustedPayloadError",
    "WiringError",
    "WorkerLostError",
]


class PirnLikeError(Exception):
    """Base class of every error pirn_like raises on purpose."""


class KnotDefinitionError(PirnLikeError, TypeError):
    """A Knot subclass or ``@knot`` function cannot be used as written."""


class WiringError(PirnLikeError, ValueError):
    """A knot or tapestry is wired wrongly (ids, inputs, references)."""


class CycleError(WiringError):
    """The graph contains a ring; ``ring`` lists the knot ids around it."""

    def __init__(self, ring: Sequence[str]) -> None:
        self.ring: tuple[str, ...] = tuple(ring)
        path = " -> ".join([*self.ring, self.ring[0]])
        super().__init__(f"the tapestry has a cycle: {path}; a knot cannot depend on itself")


class PipelineError(PirnLikeError, ValueError):
    """A YAML pipeline cannot be loaded; ``file``, ``line`` and ``column`` (1-based)
    locate the first problem, and the message says what was expected there."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        self.file = file
        self.line = line
        self.column = column
        self.problem = message
        where = ":".join(str(p) for p in (file or "<yaml>", line, column) if p is not None)
        super().__init__(f"{where}: {message}")


class ParameterError(PirnLikeError, ValueError):
    """A RunRequest's parameters are unknown, missing or of the wrong type."""


class DuplicateRunError(PirnLikeError, ValueError):
    """A RunRequest's ``run_id`` is already recorded in the tapestry's history."""


class UnhashableValueError(PirnLikeError, TypeError):
    """A value has no codec, so it cannot be content-hashed."""

    def __init__(self, type_name: str, *, where: str | None = None) -> None:
        self.type_name = type_name
        self.where = where
        place = f"{where}: " if where else ""
        super().__init__(
            f"{place}cannot content-hash a value of type {type_name!r}: no codec is registered "
            f"for it. Register one with pirn_like.register_codec({type_name.rsplit('.', 1)[-1]}, "
            "reduce=lambda v: <plain data that identifies v>), or return plain data, a "
            "dataclass or a pydantic model."
        )

    def located(self, where: str) -> UnhashableValueError:
        """A copy of this error that names where the value came from."""
        return UnhashableValueError(self.type_name, where=where)


class KnotTimeoutError(PirnLikeError, TimeoutError):
    """A knot did not finish before its timeout."""


class ParentFailedError(PirnLikeError):
    """A knot under ``REQUIRE_ALL_PARENTS`` had a parent that failed or was skipped."""


class MapItemsFailedError(PirnLikeError):
    """One or more items of a fan-out failed."""


class SubTapestryError(PirnLikeError):
    """The inner run of a SubTapestry did not succeed."""


class MissingExtraError(PirnLikeError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""

    def __init__(self, feature: str, extra: str, module: str) -> None:
        super().__init__(
            f"{feature} needs the {module!r} package: pip install 'pirn-like[{extra}]'"
        )


class ClosedResourceError(PirnLikeError, RuntimeError):
    """A backend, dispatcher or tapestry was used after it was closed."""


class BackendError(PirnLikeError):
    """A backend cannot be opened or used. Messages name the backend's URL with any
    password redacted."""


class SchemaVersionError(BackendError):
    """A database's schema is newer than this pirn_like understands."""


class SerializationError(PirnLikeError, TypeError):
    """A value cannot be turned into bytes for a persistent backend, or stored bytes
    cannot be turned back into a value."""


class SignatureError(PirnLikeError, ValueError):
    """A signed request's signature is missing, malformed, does not match its body,
    or carries a timestamp outside the replay window."""


class UntrustedPayloadError(SerializationError):
    """Stored bytes hold a pickle that is unsigned, signed with another key, tampered
    with, or read by a serializer that was not given a key (pickle is opt-in)."""


class ResumeError(PirnLikeError):
    """A run cannot be resumed: unknown run id, already finished, or its values are gone."""


class RemoteKnotError(PirnLikeError):
    """A knot raised on a remote worker, and its exception class could not be rebuilt
    here (not importable, or not constructible from its arguments).

    ``remote_type`` is the remote exception's ``module.qualname`` (lineage and
    ``ExceptionRecord.type`` show it); the remote traceback is attached as a note.
    """

    def __init__(self, remote_type: str, message: str) -> None:
        super().__init__(message)
        self.remote_type = remote_type


class WorkerLostError(PirnLikeError):
    """The worker running a knot died (killed, out of memory) or became unreachable;
    the knot's retry policy applies to it like to any failure."""
