"""The run explorer over a SQLite history of real runs: authentication, filters, the
run page, lineage navigation, escaping of hostile strings, and read-only methods."""

from __future__ import annotations

import functools
import inspect
import logging
import re
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from html import unescape
from urllib.parse import quote

import anyio
import httpx
import pytest
from _ui_runs import EVIL, TOKEN, Runs, record_runs

import pirn_like.ui
from pirn_like.backends._from_url import history_from_url
from pirn_like.ui import build_ui_app, run_ui

# The SQLite history (aiosqlite) and uvicorn are asyncio-only.
pytestmark = [pytest.mark.anyio, pytest.mark.parametrize("anyio_backend", ["asyncio"])]
BEARER = {"Authorization": f"Bearer {TOKEN}"}
HREF = re.compile(r'href="([^"]*)"')


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    return anyio.run(record_runs, tmp_path_factory.mktemp("ui"))


@asynccontextmanager
async def explorer(
    runs: Runs, *, token: str | None = TOKEN, auth: bool = True
) -> AsyncGenerator[httpx.AsyncClient]:
    """A client talking to the explorer in-process (no token sent unless asked)."""
    async with history_from_url(runs.url) as history:
        app = build_ui_app(history, token=token, auth=auth)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ui.test") as client:
            yield client


def run_ids(page: str) -> list[str]:
    return [
        unescape(m)
        for m in re.findall(r'<a class="run-link" href="[^"]*"><code>(.*?)</code>', page)
    ]


def links(page: str) -> list[str]:
    return [unescape(m) for m in HREF.findall(page)]


async def test_requests_without_the_token_are_refused(runs: Runs) -> None:
    async with explorer(runs) as client:
        for path in ("/", "/runs/run-ok", "/lineage?hash=x", "/nowhere"):
            response = await client.get(path)
            assert response.status_code == 401, path
            assert "Bearer" in response.text
            assert "run-ok" not in response.text
        wrong = await client.get("/", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        assert (await client.get("/?token=nope")).status_code == 401
        assert (await client.get("/", headers=BEARER)).status_code == 200


async def test_token_query_sets_a_strict_http_only_cookie_once(runs: Runs) -> None:
    async with explorer(runs) as client:
        first = await client.get("/runs/run-ok", params={"token": TOKEN})
        assert first.status_code == 303
        assert first.headers["location"] == "/runs/run-ok"  # the token leaves the address
        cookie = first.headers["set-cookie"].lower()
        assert "httponly" in cookie
        assert "samesite=strict" in cookie
        # The client keeps the cookie: later requests need neither header nor query.
        again = await client.get("/runs/run-failed")
        assert again.status_code == 200
        assert "run-failed" in again.text
        kept = await client.get("/", params={"token": TOKEN, "status": "failed"})
        assert kept.headers["location"] == "/?status=failed"


async def test_a_generated_token_is_logged_once(
    runs: Runs, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="pirn_like.ui")
    async with history_from_url(runs.url) as history:
        app = build_ui_app(history)
        token = app.state.token
        assert isinstance(token, str)
        assert len(token) >= 32
        assert [r.getMessage() for r in caplog.records].count(
            f"run explorer token (generated): {token}"
        ) == 1
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ui.test") as client:
            assert (await client.get("/")).status_code == 401
            ok = await client.get("/", headers={"Authorization": f"Bearer {token}"})
            assert ok.status_code == 200


async def test_auth_off_must_be_explicit_and_warns(
    runs: Runs, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="pirn_like.ui")
    async with explorer(runs, token=None, auth=False) as client:
        assert (await client.get("/")).status_code == 200
    assert any("authentication is OFF" in r.getMessage() for r in caplog.records)
    async with history_from_url(runs.url) as history:
        with pytest.raises(ValueError, match="auth=False"):
            build_ui_app(history, token=TOKEN, auth=False)


async def test_only_get_and_head_are_allowed(runs: Runs) -> None:
    async with explorer(runs) as client:
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            response = await client.request(method, "/runs/run-ok", headers=BEARER)
            assert response.status_code == 405, method
            assert response.headers["allow"] == "GET, HEAD"
        # Read-only before authenticated: an anonymous POST learns nothing either way.
        assert (await client.post("/")).status_code == 405
        head = await client.head("/", headers=BEARER)
        assert head.status_code == 200
        assert head.content == b""


async def test_runs_list_filters_by_status_trigger_and_time(runs: Runs) -> None:
    async with explorer(runs, token=TOKEN) as client:

        async def listed(**query: str) -> list[str]:
            response = await client.get("/", params=query, headers=BEARER)
            assert response.status_code == 200
            return run_ids(response.text)

        everything = await listed()
        assert set(everything) == {"run-ok", "run-failed", "run-cron", f"run-{EVIL}"}
        assert await listed(status="failed") == ["run-failed"]
        assert await listed(trigger="cron") == ["run-cron"]
        assert set(await listed(trigger="none")) == {"run-ok", "run-failed"}
        assert await listed(trigger="cron", status="failed") == []
        later = runs.cron.started_at.isoformat()
        assert set(await listed(after=later)) == {"run-cron", f"run-{EVIL}"}
        assert set(await listed(before=later)) == {"run-ok", "run-failed"}
        assert len(await listed(limit="2")) == 2
        page = (await client.get("/", params={"limit": "2"}, headers=BEARER)).text
        older = [link for link in links(page) if "before=" in link]
        assert len(older) == 1
        rest = run_ids((await client.get(older[0], headers=BEARER)).text)
        assert set(rest) | set(await listed(limit="2")) == set(everything)


async def test_bad_filters_are_refused_naming_the_parameter(runs: Runs) -> None:
    async with explorer(runs) as client:
        for query, word in (
            ({"status": "sideways"}, "status must be one of"),
            ({"after": "yesterday"}, "after must be an ISO 8601 time"),
            ({"limit": "0"}, "limit must be a whole number"),
        ):
            response = await client.get("/", params=query, headers=BEARER)
            assert response.status_code == 400
            assert word in response.text


async def test_run_page_shows_graph_timeline_knots_and_errors(runs: Runs) -> None:
    failed = runs.failed
    async with explorer(runs) as client:
        response = await client.get("/runs/run-failed", headers=BEARER)
        assert response.status_code == 200
        assert "default-src 'none'" in response.headers["content-security-policy"]
        page = response.text
        assert '<svg class="pirn-graph"' in page
        assert page.count('<g class="knot"') == len(failed.lineage)
        assert '<svg class="pirn-timeline"' in page
        assert 'data-outcome="err"' in page
        for rec in failed.lineage:
            assert f'id="knot-{rec.knot_id}" data-outcome="{rec.outcome.value}"' in page
            if rec.output_hash is not None:
                assert f'href="/lineage?hash={quote(rec.output_hash, safe="")}"' in page
        check = failed.lineage_for("check")
        assert check.error_record_id is not None
        errors = page[page.index('class="failures"') :]
        assert "check</a> failed" in errors
        assert check.error_record_id in errors
        assert "after</a> skipped: parent_failed" in errors
        # History keeps the exception: its type, message and traceback, all inert.
        assert "ValueError: too big: 10 &lt;/script&gt;&lt;script&gt;alert(1)" in errors
        assert "Traceback (most recent call last)" in errors
        assert "<script" not in page
        assert "<img" not in page
        missing = await client.get("/runs/no-such-run", headers=BEARER)
        assert missing.status_code == 404
        assert "no run &#x27;no-such-run&#x27;" in missing.text


async def test_lineage_page_links_up_and_downstream(runs: Runs) -> None:
    ok = runs.ok
    d = ok.lineage_for("d")
    assert d.output_hash is not None
    async with explorer(runs) as client:
        page = (await client.get("/lineage", params={"hash": d.output_hash}, headers=BEARER)).text
        producers = page[page.index('class="producers"') : page.index('class="consumers"')]
        consumers = page[page.index('class="consumers"') :]
        # Produced by d in run-ok; upstream: d's input (the parameter's hash).
        assert "/runs/run-ok#knot-d" in links(producers)
        x_hash = d.parent_input_hashes["x"]
        assert f"/lineage?hash={quote(x_hash, safe='')}" in links(producers)
        # Consumed by check and inc; downstream: their outputs.
        inc = ok.lineage_for("inc")
        assert inc.output_hash is not None
        assert "/runs/run-ok#knot-inc" in links(consumers)
        downstream = f"/lineage?hash={quote(inc.output_hash, safe='')}"
        assert downstream in links(consumers)
        # Following the link downstream lands on a page naming inc as producer.
        onward = (await client.get(downstream, headers=BEARER)).text
        assert "/runs/run-ok#knot-inc" in links(onward[: onward.index('class="consumers"')])
        # Up from x: the parameter knot produced it.
        up = (await client.get(f"/lineage?hash={quote(x_hash, safe='')}", headers=BEARER)).text
        assert "/runs/run-ok#knot-param%3Ax" in links(up)
        unknown = await client.get("/lineage", params={"hash": "sha256:0"}, headers=BEARER)
        assert unknown.text.count("None recorded.") == 2
        assert (await client.get("/lineage", headers=BEARER)).status_code == 200


async def test_hostile_strings_are_escaped_everywhere(runs: Runs) -> None:
    hostile_id = f"run-{EVIL}"
    async with explorer(runs) as client:
        listing = (await client.get("/", headers=BEARER)).text
        run_page = (await client.get(f"/runs/{quote(hostile_id, safe='')}", headers=BEARER)).text
        search = (await client.get("/lineage", params={"hash": EVIL}, headers=BEARER)).text
        for page in (listing, run_page, search):
            assert "<script" not in page
            assert "<img" not in page
            assert "&lt;script&gt;alert(1)" in page
        assert hostile_id in run_ids(listing)
        assert "&lt;img src=x onerror=alert(2)&gt;" in run_page  # label and trigger source
        assert run_page.count("&lt;/script&gt;&lt;script&gt;") >= 3  # id, label, source


async def test_lineage_page_draws_the_whole_provenance_with_links(runs: Runs) -> None:
    """run-ok's d output (2) is also run-cron's parameter: its provenance runs three
    hops up into run-ok and four down through run-cron, every node a link."""
    d = runs.ok.lineage_for("d")
    total_cron = runs.cron.lineage_for("total")
    assert d.output_hash is not None
    assert total_cron.output_hash is not None
    async with explorer(runs) as client:
        page = (await client.get("/lineage", params={"hash": d.output_hash}, headers=BEARER)).text
        section = page[page.index('class="provenance"') : page.index('class="producers"')]
        assert "3 hops upstream, 4 hops downstream" in section
        hrefs = links(section)
        assert "/runs/run-ok#knot-param%3Ax" in hrefs  # three hops up
        assert "/runs/run-cron#knot-total" in hrefs  # three hops down, in another run
        assert f"/lineage?hash={quote(total_cron.output_hash, safe='')}" in hrefs  # four
        assert 'data-column="-3"' in section
        assert 'data-column="4"' in section
        assert "flowchart LR" in section  # the Mermaid source, escaped as text
        # The hostile run's values: its id is drawn in the graph, inert.
        hostile_d = runs.hostile.lineage_for("d").output_hash
        assert hostile_d is not None
        hostile = await client.get("/lineage", params={"hash": hostile_d}, headers=BEARER)
        assert "<script" not in hostile.text
        assert "<img" not in hostile.text
        assert "run run-&lt;/script&gt;" in hostile.text


async def test_run_ui_serves_over_http(runs: Runs) -> None:
    async with anyio.create_task_group() as tg:
        port = await tg.start(functools.partial(run_ui, runs.url, port=0, token=TOKEN))
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            assert (await client.get("/")).status_code == 401
            response = await client.get("/", headers=BEARER)
            assert response.status_code == 200
            assert "run-cron" in response.text
        tg.cancel_scope.cancel()


async def test_public_names_and_the_serve_ui_contract() -> None:
    assert pirn_like.ui.__all__ == ["build_ui_app", "run_ui", "serve_ui"]
    for name in pirn_like.ui.__all__:
        assert getattr(pirn_like.ui, name).__module__ == "pirn_like.ui"
    # What `pirn-like ui` calls.
    signature = inspect.signature(pirn_like.ui.serve_ui)
    assert str(signature) == (
        "(history_url: 'str', *, host: 'str' = '127.0.0.1', port: 'int' = 8765, "
        "token: 'str | None' = None, auth: 'bool' = True) -> 'None'"
    )


async def test_mounted_under_a_prefix_links_stay_inside_it(runs: Runs) -> None:
    from starlette.applications import Starlette
    from starlette.routing import Mount

    async with history_from_url(runs.url) as history:
        outer = Starlette(routes=[Mount("/explorer", app=build_ui_app(history, token=TOKEN))])
        transport = httpx.ASGITransport(app=outer)
        async with httpx.AsyncClient(transport=transport, base_url="http://ui.test") as client:
            first = await client.get("/explorer/runs/run-ok", params={"token": TOKEN})
            assert first.headers["location"] == "/explorer/runs/run-ok"
            page = (await client.get("/explorer/")).text
            assert "/explorer/runs/run-ok" in links(page)
            assert all(link.startswith("/explorer/") for link in links(page))


async def test_a_malformed_cookie_is_no_token(runs: Runs) -> None:
    async with explorer(runs) as client:
        response = await client.get("/", headers={"Cookie": 'pirn_ui_token="\\'})
        assert response.status_code == 401
