"""Serving the explorer: open a history by URL and run uvicorn until stopped."""

from __future__ import annotations

import contextlib
import functools
import secrets

import anyio
from anyio.abc import TaskStatus

from pirn_like.backends._from_url import history_from_url
from pirn_like.backends._url import redact
from pirn_like.triggers._serve_asgi import serve_asgi
from pirn_like.ui._app import build_ui_app, logger

__all__ = ["run_ui", "serve_ui"]


async def run_ui(
    history_url: str,
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    token: str | None = None,
    auth: bool = True,
    task_status: TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the explorer over the history at ``history_url`` until cancelled
    (asyncio only). Reports the bound port through ``task_status`` (``port=0`` picks
    a free one). A token generated here is logged once, in the address to open."""
    generated = auth and token is None
    if generated:
        token = secrets.token_urlsafe(32)
    async with history_from_url(history_url) as history:
        app = build_ui_app(history, token=token, auth=auth)
        async with serve_asgi(app, host=host, port=port, name="the run explorer") as bound:
            where = f"http://{host}:{bound}/"
            if generated:
                logger.warning(
                    "run explorer for %s: open %s?token=%s", redact(history_url), where, token
                )
            else:
                logger.warning("run explorer for %s at %s", redact(history_url), where)
            task_status.started(bound)
            await anyio.sleep_forever()


def serve_ui(
    history_url: str,
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    token: str | None = None,
    auth: bool = True,
) -> None:
    """Serve the explorer until interrupted (Ctrl-C): ``run_ui`` on a new asyncio loop."""
    serve = functools.partial(run_ui, history_url, host=host, port=port, token=token, auth=auth)
    with contextlib.suppress(KeyboardInterrupt):
        anyio.run(serve, backend="asyncio")
