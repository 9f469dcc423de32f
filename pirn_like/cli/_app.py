"""The Typer application: one command per function of the command modules."""

import typer

from pirn_like.cli._history import lineage, report, runs, show
from pirn_like.cli._pipeline import graph, schema, validate
from pirn_like.cli._running import resume, run
from pirn_like.cli._serve import serve
from pirn_like.cli._ui import ui

__all__ = ["app"]

app = typer.Typer(
    name="pirn-like",
    help="Run, inspect and serve pirn_like tapestries.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
for command in (run, resume, serve, validate, graph, schema, runs, show, lineage, report, ui):
    app.command()(command)
