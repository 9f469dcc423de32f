"""The explorer's page shell and the small pieces every page uses.

Every string that may come from a run (ids, classes, hashes, labels, trigger fields)
goes through ``text`` or ``attr`` before it reaches markup; links are built from
quoted paths and encoded queries, then escaped as attributes.
"""

from __future__ import annotations

from html import escape
from urllib.parse import quote, urlencode

__all__ = [
    "CSP",
    "attr",
    "hash_code",
    "hash_link",
    "lineage_href",
    "page",
    "run_href",
    "runs_href",
    "text",
]

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'"
"""No scripts, no fetches: the pages are plain HTML with inline styles and drawings."""

_CSS = """
body { font-family: system-ui, sans-serif; margin: 0; color: #222; background: #fafafa; }
header { padding: 10px 20px; background: #fff; border-bottom: 1px solid #ddd;
  display: flex; gap: 18px; align-items: baseline; }
header .brand { font-weight: bold; color: #222; text-decoration: none; }
header nav a { margin-right: 12px; }
main { padding: 16px 20px; }
h1 { font-size: 18px; margin: 0 0 10px; word-break: break-all; }
section { background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: 10px 12px;
  margin-bottom: 16px; overflow: auto; }
section h2 { font-size: 14px; margin: 0 0 8px; }
table { border-collapse: collapse; font-size: 13px; width: 100%; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #eee; vertical-align: top; }
th { color: #555; font-weight: 600; }
a { color: #1f5fa8; }
code, .hash { font-family: ui-monospace, monospace; font-size: 12px; }
.status { font-weight: 600; }
.status-succeeded, .outcome-ok { color: #2e8b57; }
.status-failed, .status-timed_out, .outcome-err { color: #c0392b; }
.status-cancelled, .outcome-cancelled { color: #b7791f; }
.status-running { color: #4a6fa5; } .outcome-skipped { color: #777; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: 4px 12px;
  font-size: 13px; margin: 0; }
dl.meta dt { color: #666; } dl.meta dd { margin: 0; word-break: break-all; }
form.filters { display: flex; flex-wrap: wrap; gap: 10px; align-items: end; font-size: 13px; }
form.filters label { display: flex; flex-direction: column; gap: 2px; color: #555; }
.error { color: #c0392b; } .empty { color: #777; }
ul.plain { margin: 0; padding-left: 18px; }
pre.traceback { color: #222; font-size: 12px; white-space: pre-wrap; word-break: break-all; }
"""


def text(value: object) -> str:
    """``value`` as text safe anywhere in HTML."""
    return escape(str(value), quote=True)


def attr(value: object) -> str:
    """``value`` as a double-quoted attribute value."""
    return f'"{escape(str(value), quote=True)}"'


def runs_href(root: str, query: dict[str, str] | None = None) -> str:
    """The runs list, with ``query`` (unset keys left out)."""
    wanted = {k: v for k, v in (query or {}).items() if v}
    return f"{root}/" + (f"?{urlencode(wanted)}" if wanted else "")


def run_href(root: str, run_id: str, knot_id: str | None = None) -> str:
    """One run's page, optionally at one knot's row."""
    anchor = f"#knot-{quote(knot_id, safe='')}" if knot_id is not None else ""
    return f"{root}/runs/{quote(run_id, safe='')}{anchor}"


def lineage_href(root: str, content_hash: str) -> str:
    """The lineage page of one content hash."""
    return f"{root}/lineage?{urlencode({'hash': content_hash})}"


def hash_link(root: str, content_hash: str | None) -> str:
    """A short, linked form of ``content_hash`` (the full hash in its tooltip)."""
    if content_hash is None:
        return '<span class="empty">—</span>'
    return (
        f'<a class="hash" href={attr(lineage_href(root, content_hash))} '
        f"title={attr(content_hash)}>{text(_short(content_hash))}</a>"
    )


def hash_code(content_hash: str, css_class: str) -> str:
    """A short, unlinked form of a hash that is not a value's (config, error record)."""
    short = text(_short(content_hash))
    return f"<code class={attr(css_class)} title={attr(content_hash)}>{short}</code>"


def _short(content_hash: str) -> str:
    algorithm, _, digest = content_hash.rpartition(":")
    return f"{algorithm}:{digest[:12]}…" if len(digest) > 16 else content_hash


def page(title: str, body: str, *, root: str) -> str:
    """A whole HTML document around ``body``; ``title`` is plain text."""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content={attr(CSP)}>'
        '<meta name="referrer" content="no-referrer">'
        f"<title>{text(title)} · pirn_like runs</title><style>{_CSS}</style></head><body>"
        f'<header><a class="brand" href={attr(runs_href(root))}>pirn_like runs</a>'
        f"<nav><a href={attr(runs_href(root))}>Runs</a>"
        f"<a href={attr(f'{root}/lineage')}>Lineage</a></nav></header>"
        f"<main>{body}</main></body></html>"
    )
