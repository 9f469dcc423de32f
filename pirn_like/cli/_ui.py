"""``ui``: serve the run explorer (``pirn_like.ui``) over a history."""

from typing import Annotated

import typer

from pirn_like.cli._console import reporting

__all__ = ["ui"]


def ui(
    history: Annotated[
        str, typer.Option("--history", help="Run history URL, e.g. sqlite:///runs.db.")
    ],
    host: Annotated[str, typer.Option("--host", help="The address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="The port (0 picks a free one).")] = 8765,
    token: Annotated[
        str | None,
        typer.Option(
            "--token", envvar="PIRN_LIKE_UI_TOKEN", help="Access token (default: generated)."
        ),
    ] = None,
    no_auth: Annotated[
        bool, typer.Option("--no-auth", help="Serve without a token (trusted networks only).")
    ] = False,
) -> None:
    """Serve the run explorer over a history until Ctrl-C."""
    with reporting():
        from pirn_like.ui import serve_ui  # Starlette and uvicorn load only here

        serve_ui(history, host=host, port=port, token=token, auth=not no_auth)
