"""Leadership: holding a lease in the background, and knowing when it was lost."""

from __future__ import annotations

import logging
import math

import anyio
from anyio.abc import TaskStatus

from pirn_like.triggers._lease import Lease

__all__ = ["Leadership"]

_log = logging.getLogger("pirn_like.triggers")


class Leadership:
    """While ``run`` runs: take ``lease`` when it is free and renew it every ``ttl / 3``
    seconds once held.

    ``term`` is the fencing token of the term this process leads in, or None. It
    turns None as soon as a renewal fails or errs, and in any case once
    ``ttl`` has passed since the last successful renewal began (by this process's
    monotonic clock), so a process whose renewals stall stops acting as leader
    before the store lets another take over.
    """

    def __init__(self, lease: Lease) -> None:
        self.lease = lease
        self._interval = lease.ttl / 3
        self._token: int | None = None
        self._valid_until = -math.inf
        self._changed = anyio.Event()

    @property
    def term(self) -> int | None:
        if self._token is not None and anyio.current_time() < self._valid_until:
            return self._token
        return None

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Hold the lease until cancelled (the owner releases it afterwards)."""
        task_status.started()
        while True:
            began = anyio.current_time()
            # Shielded: an attempt cancelled halfway could leave the store's connection
            # mid-transaction. A slow attempt costs nothing: ``term`` expires on time.
            token: int | None = None
            with anyio.CancelScope(shield=True):
                token = await self._attempt()
            if token is not None:
                self._valid_until = began + self.lease.ttl
            if token != self._token:
                _log.info(
                    "lease %r: %s",
                    self.lease.name,
                    f"leading (term {token})" if token is not None else "not leading",
                )
            self._token = token
            # Every attempt wakes the waiters: a term may have become valid again.
            self._changed.set()
            self._changed = anyio.Event()
            await anyio.sleep_until(began + self._interval)

    async def _attempt(self) -> int | None:
        lease = self.lease
        try:
            if self._token is not None and await lease.renew():
                return lease.token
            # Not held, or just lost: take it if free (a new term).
            return lease.token if await lease.acquire() else None
        except Exception:
            # An unreachable store means not leading; the next attempt retries.
            _log.warning("lease %r: cannot reach its store", lease.name, exc_info=True)
            return None

    async def wait_for_term(self) -> int:
        """Wait until this process leads; the term's token."""
        while (term := self.term) is None:
            await self._changed.wait()
        return term

    async def wait_lost(self, term: int) -> None:
        """Wait until ``term`` is no longer this process's current term."""
        while self.term == term:
            with anyio.CancelScope(deadline=self._valid_until):
                await self._changed.wait()
