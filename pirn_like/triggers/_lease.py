"""Leases: leader election for processes that share a database."""

from __future__ import annotations

import importlib
import os
import socket
import uuid
from typing import Protocol, Self

from pirn_like.backends._url import BackendURL

__all__ = ["Lease", "default_holder", "lease_from_url", "validate_lease"]

# scheme -> (module under pirn_like.triggers, class name)
_LEASES = {
    "sqlite": ("_lease_sqlite", "SQLiteLease"),
    "postgresql": ("_lease_postgres", "PostgresLease"),
    "postgres": ("_lease_postgres", "PostgresLease"),
    "valkey": ("_lease_valkey", "ValKeyLease"),
    "valkeys": ("_lease_valkey", "ValKeyLease"),
    "redis": ("_lease_valkey", "ValKeyLease"),
    "rediss": ("_lease_valkey", "ValKeyLease"),
}


class Lease(Protocol):
    """A named lock that expires ``ttl`` seconds after it was last taken or renewed.

    At most one holder has an unexpired lease at any moment. Each time a holder takes
    it afresh a new term starts and ``token`` (the fencing token) grows, so anything
    written under an older term can be told apart and refused.

    - ``acquire()``: take the lease if it is free or expired (a new term), or extend
      this holder's unexpired term; True if this holder has it afterwards.
    - ``renew()``: extend this holder's term; False if the term has expired (even if
      nobody took the lease since: an expired holder must ``acquire`` again) or was
      ended. Never starts a term.
    - ``release()``: end this holder's term now, so another can take over at once.
    - ``read_value()``/``write_value(v)``: a short string kept with the lease that
      only the holder of the current, unexpired term may change (``CronTrigger``
      keeps its last fire there); ``write_value`` returns False otherwise.
    - ``leader()``: who holds the lease right now, or None.

    Expiry is judged by the store's clock: the machine's for SQLite, the server's for
    PostgreSQL and ValKey. Driver failures raise ``BackendError``. Leaving the
    ``async with`` block releases the lease if held and closes the connection.
    """

    @property
    def name(self) -> str: ...

    @property
    def holder(self) -> str:
        """This process's id in the lease (host, pid and a random part by default)."""
        ...

    @property
    def ttl(self) -> float:
        """Seconds a term lasts after it was taken or last renewed."""
        ...

    @property
    def token(self) -> int | None:
        """The fencing token of this holder's current term, or None if it has none."""
        ...

    async def acquire(self) -> bool: ...
    async def renew(self) -> bool: ...
    async def release(self) -> None: ...
    async def leader(self) -> str | None: ...
    async def read_value(self) -> str | None: ...
    async def write_value(self, value: str) -> bool: ...
    async def __aenter__(self) -> Self: ...
    async def __aexit__(self, *exc_info: object) -> None: ...


def lease_from_url(url: str, name: str, *, holder: str | None = None, ttl: float = 15.0) -> Lease:
    """The lease called ``name`` in the store a URL names.

    ``sqlite:///path.db`` (a table in that file, which may be the history's),
    ``postgresql://…`` (a table in that database) or ``valkey://host:port/db`` (keys
    under ``pirn_like:lease:``). ``holder`` defaults to ``default_holder()``.
    """
    parsed = BackendURL.parse(url)
    entry = _LEASES.get(parsed.scheme)
    if entry is None:
        known = ", ".join(sorted({f"{s}://" for s in _LEASES}))
        raise ValueError(f"no lease store for URL {parsed.redacted!r}; known schemes: {known}")
    module, cls_name = entry
    cls = getattr(importlib.import_module(f"pirn_like.triggers.{module}"), cls_name)
    lease: Lease = cls.from_url(url, name, holder=holder, ttl=ttl)
    return lease


def default_holder() -> str:
    """``host:pid:random``: unique per lease object, readable in ``leader()``."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def validate_lease(name: str, holder: str | None, ttl: float) -> str:
    """Check a lease's settings; the holder id to use."""
    if not name:
        raise ValueError("a lease needs a non-empty name")
    if isinstance(ttl, bool) or not isinstance(ttl, int | float) or not ttl > 0:
        raise ValueError(f"lease ttl must be a positive number of seconds, got {ttl!r}")
    if holder is not None and not holder:
        raise ValueError("a lease holder id must not be empty")
    return holder if holder is not None else default_holder()
