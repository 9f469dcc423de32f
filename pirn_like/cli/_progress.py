"""A live per-knot progress table, fed by the run's events."""

from __future__ import annotations

from typing import Self

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from pirn_like.core._events import KnotFinished, KnotStarted, RunEvent

__all__ = ["ProgressEmitter"]

_STYLES = {
    "running": "yellow",
    "ok": "green",
    "err": "red",
    "skipped": "dim",
    "cancelled": "magenta",
}


class ProgressEmitter:
    """An Emitter that keeps one row per knot (state and duration) in a rich ``Live``
    table. On a terminal the table redraws in place; elsewhere (a pipe, a CI log) it is
    printed once, when the display stops."""

    def __init__(self, console: Console) -> None:
        self._rows: dict[str, tuple[str, float | None]] = {}
        self._console = console
        self._live = Live(self._table(), console=console, auto_refresh=False, transient=False)

    def __enter__(self) -> Self:
        if self._console.is_terminal:
            self._live.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._console.is_terminal:
            self._live.update(self._table(), refresh=True)
            self._live.stop()
        else:  # no cursor to redraw with: print the final table once
            self._console.print(self._table())

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None

    async def emit(self, event: RunEvent) -> None:
        """Update the knot's row and redraw."""
        if isinstance(event, KnotStarted):
            self._rows[event.knot_id] = ("running", None)
        elif isinstance(event, KnotFinished):
            rec = event.lineage
            seconds = (rec.finished_at - rec.started_at).total_seconds()
            self._rows[rec.knot_id] = (rec.outcome.value, seconds)
        else:
            return
        self._live.update(self._table(), refresh=self._console.is_terminal)

    def _table(self) -> Table:
        table = Table("knot", "state", "seconds", title="knots", title_justify="left")
        for knot_id, (state, seconds) in self._rows.items():
            shown = "" if seconds is None else f"{seconds:.3f}"
            table.add_row(Text(knot_id), Text(state, style=_STYLES.get(state, "")), shown)
        return table
