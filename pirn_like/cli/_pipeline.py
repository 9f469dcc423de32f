"""Commands about a pipeline's shape: ``validate``, ``graph`` and ``schema``."""

import enum
import html
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from pirn_like.cli._console import out_console, reporting
from pirn_like.cli._target import load_target

__all__ = ["GraphFormat", "graph", "schema", "validate"]

Output = Annotated[
    Path | None, typer.Option("--output", "-o", help="Write to this file instead of stdout.")
]


class GraphFormat(enum.StrEnum):
    """What ``graph`` draws."""

    MERMAID = "mermaid"
    SVG = "svg"
    HTML = "html"


def validate(
    file: Annotated[Path, typer.Argument(help="The pipeline YAML file to check.")],
) -> None:
    """Load a pipeline YAML file without running it: OK, or the error with its line."""
    from pirn_like.yaml import load_pipeline

    with reporting():
        tapestry = load_pipeline(file)
    out_console().print(Text(f"OK: {file} ({len(tapestry.knots)} knots)", style="green"))


def graph(
    target: Annotated[str, typer.Argument(help="A pipeline YAML file or package.module:tapestry.")],
    format: Annotated[
        GraphFormat, typer.Option("--format", "-f", help="mermaid, svg or html.")
    ] = GraphFormat.MERMAID,
    output: Output = None,
) -> None:
    """Draw TARGET's knots and wiring."""
    from pirn_like.viz import mermaid_for_tapestry, svg_for_tapestry

    with reporting():
        tapestry = load_target(target)
        if format is GraphFormat.MERMAID:
            text = mermaid_for_tapestry(tapestry)
        elif format is GraphFormat.SVG:
            text = svg_for_tapestry(tapestry)
        else:
            text = _page(target, svg_for_tapestry(tapestry))
    _write(text, output)


def schema(output: Output = None) -> None:
    """Print the pipeline YAML format's JSON Schema (for editor completion)."""
    from pirn_like.yaml import pipeline_schema

    _write(json.dumps(pipeline_schema(), indent=2), output)


def _page(title: str, svg: str) -> str:
    """A minimal self-contained page around an inline SVG: nothing is fetched."""
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; "
        "style-src 'unsafe-inline'\">"
        f"<title>{html.escape(title)}</title></head>\n<body>\n{svg}\n</body></html>\n"
    )


def _write(text: str, output: Path | None) -> None:
    if output is None:
        typer.echo(text)
    else:
        output.write_text(text + "\n", encoding="utf-8")
