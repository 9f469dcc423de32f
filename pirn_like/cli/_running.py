"""Commands that run a tapestry: ``run`` and ``resume``."""

from collections.abc import Awaitable, Callable
from typing import Annotated

import anyio
import typer
from rich.text import Text

from pirn_like import RunRequest, RunResult, Tapestry
from pirn_like.cli._console import EXIT_FAILED, err_console, out_console, reporting
from pirn_like.cli._progress import ProgressEmitter
from pirn_like.cli._target import load_target, parse_parameters

__all__ = ["DataStoreOption", "HistoryOption", "ParamOption", "StoreOption", "resume", "run"]

ParamOption = Annotated[
    list[str] | None,
    typer.Option("--param", "-p", help="A parameter as name=value (repeatable)."),
]
HistoryOption = Annotated[
    str | None, typer.Option("--history", help="Run history URL, e.g. sqlite:///runs.db.")
]
StoreOption = Annotated[str | None, typer.Option("--store", help="Knot store URL.")]
DataStoreOption = Annotated[
    str | None, typer.Option("--data-store", help="Data store URL, e.g. file:///tmp/values.")
]
Target = Annotated[str, typer.Argument(help="A pipeline YAML file or package.module:tapestry.")]


def run(
    target: Target,
    param: ParamOption = None,
    history: HistoryOption = None,
    store: StoreOption = None,
    data_store: DataStoreOption = None,
    run_id: Annotated[str | None, typer.Option("--run-id", help="Run under this id.")] = None,
) -> None:
    """Run TARGET once, showing each knot's progress; exit 1 if the run fails."""
    progress = ProgressEmitter(err_console())
    with reporting():
        tapestry = load_target(
            target, history=history, store=store, data_store=data_store, emitters=[progress]
        )
        parameters = parse_parameters(tapestry, param or [])
        tapestry.check_parameters(parameters)
        request = RunRequest(parameters=parameters, run_id=run_id)
        result = _execute(tapestry, progress, lambda: tapestry.run(request))
    _finish(result)


def resume(
    run_id: Annotated[str, typer.Argument(help="The run to continue.")],
    target: Target,
    history: HistoryOption = None,
    store: StoreOption = None,
    data_store: DataStoreOption = None,
) -> None:
    """Continue an interrupted or failed run of TARGET, replaying the knots that finished."""
    progress = ProgressEmitter(err_console())
    with reporting():
        tapestry = load_target(
            target, history=history, store=store, data_store=data_store, emitters=[progress]
        )
        result = _execute(tapestry, progress, lambda: tapestry.resume(run_id))
    _finish(result)


def _execute(
    tapestry: Tapestry, progress: ProgressEmitter, start: Callable[[], Awaitable[RunResult]]
) -> RunResult:
    async def main() -> RunResult:
        async with tapestry:  # closing flushes the progress emitter before the table stops
            return await start()

    with progress:
        return anyio.run(main)


def _finish(result: RunResult) -> None:
    """Print the run's summary and failures to stdout; exit 1 unless it succeeded."""
    console = out_console()
    seconds = (result.finished_at - result.started_at).total_seconds()
    style = "green" if result.succeeded else "red"
    console.print(
        Text.assemble(
            "run ",
            result.run_id,
            " ",
            (result.status.value, f"bold {style}"),
            f" in {seconds:.3f}s",
        )
    )
    for exc in result.exceptions:
        console.print(Text(f"  {exc.knot_id}: {exc.type}: {exc.message}", style="red"))
    if not result.succeeded:
        raise typer.Exit(EXIT_FAILED)
