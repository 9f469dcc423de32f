"""``serve``: run a tapestry for every fire of a schedule or every webhook request."""

from dataclasses import replace
from typing import TYPE_CHECKING, Annotated

import anyio
import typer
from rich.text import Text

from pirn_like import RunOutcome, Tapestry
from pirn_like.cli._console import bad_input, err_console, out_console, reporting
from pirn_like.cli._running import DataStoreOption, HistoryOption, ParamOption, StoreOption
from pirn_like.cli._target import (
    is_pipeline_file,
    load_service_file,
    load_target,
    parse_parameters,
)
from pirn_like.protocols import Trigger

if TYPE_CHECKING:
    from pirn_like.yaml import ServiceSettings

__all__ = ["serve"]


def serve(
    target: Annotated[str, typer.Argument(help="A pipeline YAML file or package.module:tapestry.")],
    every: Annotated[
        float | None, typer.Option("--every", min=0.001, help="Run every this many seconds.")
    ] = None,
    cron: Annotated[
        str | None, typer.Option("--cron", help="Run on this cron schedule, e.g. '*/5 * * * *'.")
    ] = None,
    timezone: Annotated[str, typer.Option("--timezone", help="The cron time zone.")] = "UTC",
    webhook: Annotated[
        str | None, typer.Option("--webhook", help="Run per authenticated POST to this path.")
    ] = None,
    host: Annotated[str, typer.Option("--host", help="The webhook's address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="The webhook's port.")] = 8080,
    param: ParamOption = None,
    history: HistoryOption = None,
    store: StoreOption = None,
    data_store: DataStoreOption = None,
    max_runs: Annotated[
        int | None, typer.Option("--max-runs", min=1, help="Stop after this many runs.")
    ] = None,
    max_concurrent_runs: Annotated[
        int | None,
        typer.Option(
            "--max-concurrent-runs",
            min=1,
            help="Runs in flight at once (default: the file's service setting, else 8).",
        ),
    ] = None,
) -> None:
    """Run TARGET for its triggers until SIGTERM or SIGINT.

    A pipeline file's triggers: and service: sections are used as written; the
    options add triggers: --every/--cron fire on a schedule, with the -p parameters;
    --webhook serves authenticated POSTs of a JSON object of parameters (the token is
    read from PIRN_LIKE_WEBHOOK_TOKEN).
    """
    with reporting():
        settings: ServiceSettings | None = None
        triggers: list[Trigger] = []
        if is_pipeline_file(target):
            loaded = load_service_file(target, history=history, store=store, data_store=data_store)
            tapestry = loaded.tapestry
            triggers.extend(loaded.triggers)
            settings = loaded.settings
        else:
            tapestry = load_target(target, history=history, store=store, data_store=data_store)
        parameters = parse_parameters(tapestry, param or [])
        if every is not None or cron is not None:  # scheduled runs take exactly these
            tapestry.check_parameters(parameters)
        triggers.extend(_triggers(tapestry, every, cron, timezone, webhook, host, port, parameters))
        if not triggers:
            bad_input(
                "serve needs at least one trigger: a triggers: section in the pipeline "
                "file, or --every, --cron or --webhook"
            )
        if settings is not None and max_concurrent_runs is not None:
            settings = replace(settings, max_concurrent_runs=max_concurrent_runs)
        anyio.run(_serve, tapestry, triggers, max_runs, settings or max_concurrent_runs or 8)


def _triggers(
    tapestry: Tapestry,
    every: float | None,
    cron: str | None,
    timezone: str,
    webhook: str | None,
    host: str,
    port: int,
    parameters: dict[str, object],
) -> list[Trigger]:
    from pirn_like.triggers import CronTrigger, WebhookTrigger

    triggers: list[Trigger] = []
    try:
        if every is not None:
            triggers.append(CronTrigger(every_seconds=every, parameters=parameters))
        if cron is not None:
            triggers.append(CronTrigger(cron, timezone=timezone, parameters=parameters))
        if webhook is not None:
            triggers.append(WebhookTrigger(webhook, host=host, port=port, tapestry=tapestry))
    except ValueError as exc:
        bad_input(str(exc))
    return triggers


async def _serve(
    tapestry: Tapestry,
    triggers: list[Trigger],
    max_runs: int | None,
    service: "ServiceSettings | int",
) -> None:
    """Serve until ``max_runs`` outcomes; ``service`` is the file's settings, or just
    how many runs may be in flight."""
    from pirn_like.triggers import run_forever

    stop = anyio.Event()
    done = 0
    console = out_console()

    def report(outcome: RunOutcome) -> None:
        nonlocal done
        done += 1
        state = "duplicate" if outcome.duplicate else str(outcome.status or "refused")
        line = Text(f"run {outcome.run_id} {state}")
        for error in outcome.errors:
            line.append(f"\n  {error}", style="red")
        console.print(line)
        if max_runs is not None and done >= max_runs:
            stop.set()

    err_console().print(Text(f"serving with {len(triggers)} trigger(s); Ctrl-C stops"))
    async with tapestry:
        if isinstance(service, int):
            await run_forever(
                triggers, tapestry, max_concurrent_runs=service, stop=stop, on_outcome=report
            )
        else:
            await run_forever(
                triggers,
                tapestry,
                max_concurrent_runs=service.max_concurrent_runs,
                grace_period=service.grace_period,
                metrics_port=service.metrics_port,
                metrics_host=service.metrics_host,
                stop=stop,
                on_outcome=report,
            )
