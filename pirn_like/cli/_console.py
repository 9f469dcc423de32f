"""Consoles, exit codes and the translation of bad input into exit code 2."""

from __future__ import annotations

from collections.abc import Generator
from contextlib import contextmanager
from typing import NoReturn

import typer
from rich.console import Console, RenderableType
from rich.text import Text

from pirn_like._errors import (
    BackendError,
    DuplicateRunError,
    MissingExtraError,
    ParameterError,
    PipelineError,
    ResumeError,
    WiringError,
)

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_FAILED",
    "bad_input",
    "err_console",
    "out_console",
    "print_whole",
    "reporting",
]

EXIT_FAILED = 1
"""A run ran and did not succeed."""
EXIT_BAD_INPUT = 2
"""The command could not start: a bad file, target, parameter or URL."""

# Errors that mean "what you asked for is wrong", as opposed to a failed run.
_INPUT_ERRORS = (
    PipelineError,
    ParameterError,
    WiringError,
    ResumeError,
    BackendError,
    DuplicateRunError,
    MissingExtraError,
    FileNotFoundError,
)


def out_console() -> Console:
    """Results go to stdout (built per command so test runners' streams are used)."""
    return Console(soft_wrap=True)


def print_whole(renderable: RenderableType) -> None:
    """Print a table or tree to stdout at its natural width, even past the terminal's:
    ids and hashes in it are copied into other commands, so none may be cut short."""
    console = out_console()
    natural = console.measure(renderable, options=console.options.update_width(10_000)).maximum
    if natural > console.width:
        console = Console(soft_wrap=True, width=natural)
    console.print(renderable)


def err_console() -> Console:
    """Progress and errors go to stderr, so stdout stays pipeable."""
    return Console(stderr=True, soft_wrap=True)


def bad_input(message: str) -> NoReturn:
    """Print ``message`` as an error on stderr and exit with code 2."""
    err_console().print(Text.assemble(("error: ", "bold red"), message))
    raise typer.Exit(EXIT_BAD_INPUT)


@contextmanager
def reporting() -> Generator[None]:
    """Turn the library's bad-input errors raised inside the block into exit code 2."""
    try:
        yield
    except _INPUT_ERRORS as exc:
        bad_input(f"{type(exc).__name__}: {exc}")
