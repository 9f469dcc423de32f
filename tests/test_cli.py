"""The ``pirn-like`` command line, against real SQLite histories and real runs."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest
from _fixtures_valkey import free_port, run_server
from typer.testing import CliRunner

from pirn_like import KnotLineage, RunRecord, RunStatus, content_hash, history_from_url
from pirn_like.cli import app
from pirn_like.yaml import pipeline_schema

FLOW = """
from pathlib import Path

from pirn_like import KnotConfig, Parameter, Tapestry, knot

HERE = Path(__file__).parent


@knot
async def load(n: int) -> list[int]:
    with (HERE / "loads.txt").open("a") as f:  # counts executions, for resume
        f.write("x")
    return list(range(n))


@knot
async def mean(rows: list[int]) -> float:
    if (HERE / "broken").exists():
        raise RuntimeError("mean is broken")
    return sum(rows) / len(rows)


@knot
async def describe(
    i: int, x: float, flag: bool, opts: dict, items: list[int], name: str
) -> str:
    return repr((i, x, flag, opts, items, name))


tapestry = Tapestry()
with tapestry:
    rows = load(n=Parameter("n", int), _config=KnotConfig(id="rows"))
    mean(rows=rows, _config=KnotConfig(id="avg"))

typed = Tapestry()
with typed:
    describe(
        i=Parameter("i", int),
        x=Parameter("x", float),
        flag=Parameter("flag", bool),
        opts=Parameter("opts", dict),
        items=Parameter("items", list[int]),
        name=Parameter("name", str),
        _config=KnotConfig(id="describe"),
    )
"""

PIPELINE = """\
name: demo
allow_callable_refs: true
nodes:
  - {id: n, type: parameter, type_: int}
  - {id: rows, type: knot, callable: "MODULE:load", parents: {n: n}}
  - {id: avg, type: knot, callable: "MODULE:mean", parents: {rows: rows}}
"""

runner = CliRunner()


@pytest.fixture
def flow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A module defining tapestries, importable from the working directory ``tmp_path``."""
    name = f"cli_flow_{uuid.uuid4().hex}"
    (tmp_path / f"{name}.py").write_text(FLOW, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


@pytest.fixture
def history(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'runs.db'}"


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def stored(url: str) -> list[RunRecord]:
    async def main() -> list[RunRecord]:
        async with history_from_url(url) as h:
            return await h.list_runs()

    return anyio.run(main)


def lineage_of(url: str, run_id: str) -> list[KnotLineage]:
    async def main() -> list[KnotLineage]:
        async with history_from_url(url) as h:
            return await h.get_lineage(run_id)

    return anyio.run(main)


# -- run ------------------------------------------------------------------------------


def test_run_records_a_succeeded_run_and_shows_each_knot(flow: str, history: str) -> None:
    code, out, err = invoke("run", f"{flow}:tapestry", "-p", "n=4", "--history", history)
    assert code == 0, err
    [record] = stored(history)
    assert record.status is RunStatus.SUCCEEDED
    assert f"run {record.run_id} succeeded" in out
    for knot_id in ("param:n", "rows", "avg"):  # the progress table, printed once off a TTY
        assert knot_id in err


def test_failed_run_exits_1_and_names_the_exception(
    flow: str, history: str, tmp_path: Path
) -> None:
    (tmp_path / "broken").touch()
    code, out, _ = invoke("run", f"{flow}:tapestry", "-p", "n=2", "--history", history)
    assert code == 1
    assert "avg: builtins.RuntimeError: mean is broken" in out
    assert stored(history)[0].status is RunStatus.FAILED


def test_parameters_are_converted_by_their_declared_type(flow: str, history: str) -> None:
    args = ["-p", "i=3", "-p", "x=1.5", "-p", "flag=yes", "-p", 'opts={"a": [1]}']
    args += ["-p", "items=[1, 2]", "-p", "name=7"]
    code, _, err = invoke("run", f"{flow}:typed", *args, "--history", history)
    assert code == 0, err
    [record] = stored(history)
    [rec] = [r for r in lineage_of(history, record.run_id) if r.knot_id == "describe"]
    assert rec.output_hash == content_hash(repr((3, 1.5, True, {"a": [1]}, [1, 2], "7")))


@pytest.mark.parametrize(
    ("param", "message"),
    [
        ("n=many", "parameter 'n' (int) cannot take 'many'"),
        ("m=1", "unknown parameter 'm'; this tapestry declares: ['n']"),
        ("n", "parameter 'n' is not name=value"),
    ],
)
def test_bad_parameters_exit_2_without_running(
    flow: str, history: str, param: str, message: str
) -> None:
    code, _, err = invoke("run", f"{flow}:tapestry", "-p", param, "--history", history)
    assert code == 2
    assert message in err
    assert stored(history) == []


def test_missing_parameter_exits_2_naming_it(flow: str) -> None:
    code, _, err = invoke("run", f"{flow}:tapestry")
    assert code == 2
    assert "missing required parameter 'n'" in err


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("no_such_module_here:t", "cannot import module 'no_such_module_here'"),
        ("FLOW:nothing", "has no attribute 'nothing'"),
        ("FLOW:FLOW_TEXT", "not a Tapestry"),
        ("just-a-name", "give a YAML file"),
        ("missing.yaml", "no pipeline file 'missing.yaml'"),
    ],
)
def test_bad_targets_exit_2(flow: str, target: str, message: str) -> None:
    target = target.replace("FLOW_TEXT", "HERE").replace("FLOW", flow)
    code, _, err = invoke("run", target)
    assert code == 2
    assert message in err


def test_run_a_yaml_pipeline_and_refuse_a_broken_one_with_its_line(
    flow: str, history: str, tmp_path: Path
) -> None:
    (tmp_path / "pipe.yaml").write_text(PIPELINE.replace("MODULE", flow), encoding="utf-8")
    code, _, err = invoke("run", "pipe.yaml", "-p", "n=3", "--history", history)
    assert code == 0, err
    broken = PIPELINE.replace("MODULE", flow).replace(":mean", ":meen")
    (tmp_path / "broken.yaml").write_text(broken, encoding="utf-8")
    code, _, err = invoke("run", "broken.yaml", "-p", "n=3", "--history", history)
    assert code == 2
    assert "broken.yaml:6:" in err
    assert "meen" in err
    assert len(stored(history)) == 1


# -- validate, graph, schema -------------------------------------------------------------


def test_validate_reports_ok_or_the_error_with_its_line(flow: str, tmp_path: Path) -> None:
    (tmp_path / "pipe.yaml").write_text(PIPELINE.replace("MODULE", flow), encoding="utf-8")
    code, out, _ = invoke("validate", "pipe.yaml")
    assert (code, out.strip()) == (0, "OK: pipe.yaml (3 knots)")
    (tmp_path / "typo.yaml").write_text(PIPELINE.replace("parents", "parnets", 1))
    code, _, err = invoke("validate", "typo.yaml")
    assert code == 2
    assert "typo.yaml:5:53: unknown key 'parnets'" in err


def test_graph_draws_mermaid_svg_and_a_self_contained_page(flow: str, tmp_path: Path) -> None:
    code, out, _ = invoke("graph", f"{flow}:tapestry")
    assert code == 0
    assert out.splitlines()[:2] == ["flowchart LR", '    k0["param:n"]']
    code, out, _ = invoke("graph", f"{flow}:tapestry", "--format", "svg")
    assert out.startswith("<svg")
    code, _, _ = invoke("graph", f"{flow}:tapestry", "-f", "html", "-o", "g.html")
    page = (tmp_path / "g.html").read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert "<svg" in page
    assert "default-src 'none'" in page


def test_schema_writes_the_pipeline_json_schema(tmp_path: Path) -> None:
    code, out, _ = invoke("schema")
    assert code == 0
    assert json.loads(out) == pipeline_schema()
    code, _, _ = invoke("schema", "-o", str(tmp_path / "s.json"))
    assert json.loads((tmp_path / "s.json").read_text()) == pipeline_schema()


# -- reading a history ------------------------------------------------------------------


@pytest.fixture
def two_runs(flow: str, history: str, tmp_path: Path) -> tuple[str, str]:
    """A succeeded and a failed run, in that order: their run ids."""
    assert invoke("run", f"{flow}:tapestry", "-p", "n=3", "--history", history)[0] == 0
    (tmp_path / "broken").touch()
    assert invoke("run", f"{flow}:tapestry", "-p", "n=3", "--history", history)[0] == 1
    failed, succeeded = stored(history)
    return succeeded.run_id, failed.run_id


def test_runs_lists_newest_first_and_filters(two_runs: tuple[str, str], history: str) -> None:
    ok, failed = two_runs
    code, out, _ = invoke("runs", "--history", history)
    assert code == 0
    assert out.index(failed) < out.index(ok)
    _, out, _ = invoke("runs", "--history", history, "--status", "succeeded")
    assert ok in out
    assert failed not in out
    _, out, _ = invoke("runs", "--history", history, "--limit", "1")
    assert failed in out
    assert ok not in out
    narrow = runner.invoke(app, ["runs", "--history", history], env={"COLUMNS": "40"})
    assert ok in narrow.stdout  # ids are never cut short to fit a terminal
    assert failed in narrow.stdout


def test_show_lists_each_knot_with_outcome_and_output_hash(
    two_runs: tuple[str, str], history: str
) -> None:
    _, failed = two_runs
    code, out, _ = invoke("show", failed, "--history", history)
    assert code == 0
    rows = {r.knot_id: r for r in lineage_of(history, failed)}
    assert f"run {failed} failed" in out
    rows_line = next(line for line in out.splitlines() if " rows " in line)
    assert "ok" in rows_line
    assert str(rows["rows"].output_hash) in rows_line
    assert "err" in next(line for line in out.splitlines() if " avg " in line)
    # The stored exception, with its traceback ending where it was raised.
    assert "avg: builtins.RuntimeError: mean is broken\nTraceback" in out
    assert out.rstrip().endswith("RuntimeError: mean is broken")
    code, _, err = invoke("show", "run-nope", "--history", history)
    assert code == 2
    assert "no run 'run-nope'" in err


def test_lineage_shows_upstream_and_downstream(two_runs: tuple[str, str], history: str) -> None:
    ok, _ = two_runs
    rows = next(r for r in lineage_of(history, ok) if r.knot_id == "rows")
    code, out, _ = invoke("lineage", str(rows.output_hash), "--history", history)
    assert code == 0
    upstream, downstream = out.split("downstream")
    assert f"rows · run {ok} · ok" in upstream
    assert "param:n" in upstream
    assert "avg (as rows)" in downstream
    code, _, err = invoke("lineage", "sha256:unknown", "--history", history)
    assert code == 2
    assert "no lineage" in err


def test_lineage_draws_the_provenance_graph(two_runs: tuple[str, str], history: str) -> None:
    ok, _ = two_runs
    rows = next(r for r in lineage_of(history, ok) if r.knot_id == "rows")
    code, out, _ = invoke("lineage", str(rows.output_hash), "--history", history, "-f", "mermaid")
    assert code == 0
    assert out.startswith("flowchart LR\n")
    assert f"rows · run {ok}" in out
    assert "param:n · run" in out
    assert "class n0 searched" in out
    code, out, _ = invoke("lineage", str(rows.output_hash), "--history", history, "-f", "svg")
    assert code == 0
    assert out.startswith('<svg class="pirn-provenance"')
    assert out.rstrip().endswith("</svg>")


def test_report_writes_the_html_of_a_stored_run(
    two_runs: tuple[str, str], history: str, tmp_path: Path
) -> None:
    _, failed = two_runs
    code, _, _ = invoke("report", failed, "--history", history, "-o", str(tmp_path / "r.html"))
    assert code == 0
    page = (tmp_path / "r.html").read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert 'data-outcome="err"' in page
    assert "mean is broken" in page
    assert "Traceback (most recent call last)" in page


def test_a_bad_history_url_exits_2() -> None:
    code, _, err = invoke("runs", "--history", "bogus://x")
    assert code == 2
    assert "bogus://x" in err


# -- resume -----------------------------------------------------------------------------


def test_resume_replays_finished_knots_and_completes_the_run(
    flow: str, history: str, tmp_path: Path
) -> None:
    values = (tmp_path / "values").as_uri()
    (tmp_path / "broken").touch()
    args = ["--history", history, "--data-store", values]
    assert invoke("run", f"{flow}:tapestry", "-p", "n=3", *args)[0] == 1
    [failed] = stored(history)
    (tmp_path / "broken").unlink()
    code, out, _ = invoke("resume", failed.run_id, f"{flow}:tapestry", *args)
    assert code == 0
    assert f"run {failed.run_id} succeeded" in out
    assert (tmp_path / "loads.txt").read_text() == "x"  # rows was replayed, not rerun
    assert [r.status for r in stored(history)] == [RunStatus.SUCCEEDED]
    code, _, err = invoke("resume", failed.run_id, f"{flow}:tapestry", *args)
    assert code == 2
    assert "already succeeded" in err


# -- real processes ---------------------------------------------------------------------


def cli(*args: str) -> list[str]:
    """The command line of ``python -m pirn_like.cli ARGS`` in a child process."""
    return [sys.executable, "-m", "pirn_like.cli", *args]


def test_python_m_exit_codes_and_plain_output(flow: str, history: str, tmp_path: Path) -> None:
    ok = subprocess.run(
        cli("run", f"{flow}:tapestry", "-p", "n=2", "--history", history),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ok.returncode == 0, ok.stderr
    assert "\x1b[" not in ok.stdout + ok.stderr  # no terminal codes in a pipe
    assert "succeeded" in ok.stdout
    assert "rows" in ok.stderr
    (tmp_path / "broken").touch()
    failed = subprocess.run(
        cli("run", f"{flow}:tapestry", "-p", "n=2", "--history", history),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert failed.returncode == 1
    bad = subprocess.run(cli("validate", "nope.yaml"), capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2
    assert "nope.yaml" in bad.stderr


def test_installed_script_runs() -> None:
    script = Path(sys.executable).with_name("pirn-like")
    done = subprocess.run([str(script), "schema"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    assert json.loads(done.stdout) == pipeline_schema()


def test_serve_runs_on_a_schedule_until_max_runs(flow: str, history: str) -> None:
    done = subprocess.run(
        [
            *cli("serve", f"{flow}:tapestry", "--every", "1", "-p", "n=2"),
            "--history",
            history,
            "--max-runs",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    records = stored(history)
    assert len(records) == 2
    assert all(r.status is RunStatus.SUCCEEDED for r in records)
    assert all(r.trigger is not None and r.trigger["kind"] == "cron" for r in records)
    assert all(r.run_id in done.stdout for r in records)


def test_serve_stops_gracefully_on_sigterm(flow: str, history: str) -> None:
    with subprocess.Popen(
        cli("serve", f"{flow}:tapestry", "--every", "1", "-p", "n=2", "--history", history),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdout is not None
        try:
            first = proc.stdout.readline()  # blocks until the first run is recorded
            assert first.startswith("run cron-")
            assert "succeeded" in first
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
    assert any(r.run_id in first for r in stored(history))


def test_ui_serves_the_run_explorer_with_a_token(flow: str, history: str) -> None:
    assert invoke("run", f"{flow}:tapestry", "-p", "n=2", "--history", history)[0] == 0
    [record] = stored(history)
    command = cli("ui", "--history", history, "--port", "0", "--token", "sekrit")
    with subprocess.Popen(command, stderr=subprocess.PIPE, text=True) as proc:
        assert proc.stderr is not None
        try:
            line = proc.stderr.readline()  # logged once the server listens
            where = re.search(r"http://[\d.]+:\d+/", line)
            assert where is not None, line
            assert httpx.get(where[0], timeout=30).status_code == 401
            page = httpx.get(where[0], headers={"Authorization": "Bearer sekrit"}, timeout=30)
            assert page.status_code == 200
            assert record.run_id in page.text
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()


def test_serve_runs_per_authenticated_webhook_post(flow: str, history: str, tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"

    def listening() -> bool:
        try:
            return httpx.get(f"{base}/health", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    command = cli("serve", f"{flow}:tapestry", "--webhook", "/run", "--port", str(port))
    command += ["--history", history, "--max-runs", "1"]
    env = {**os.environ, "PIRN_LIKE_WEBHOOK_TOKEN": "s3cret"}
    with run_server(command, log=tmp_path / "serve.log", ready=listening, env=env) as proc:
        assert httpx.post(f"{base}/run", json={"n": 3}, timeout=30).status_code == 401
        auth = {"Authorization": "Bearer s3cret"}
        answer = httpx.post(f"{base}/run", json={"n": 3}, headers=auth, timeout=30)
        assert answer.status_code == 202, answer.text  # accepted; the run follows
        assert proc.wait(timeout=30) == 0  # --max-runs 1
    [record] = stored(history)
    assert record.run_id == answer.json()["run_id"]
    assert record.status is RunStatus.SUCCEEDED
    assert record.trigger is not None
    assert record.trigger["kind"] == "webhook"


def test_serve_needs_a_trigger(flow: str) -> None:
    code, _, err = invoke("serve", f"{flow}:tapestry", "-p", "n=1")
    assert code == 2
    assert "--every, --cron or --webhook" in err


def service_file(flow: str, tmp_path: Path, triggers: str) -> tuple[Path, str]:
    """A pipeline file naming its own SQLite history, with ``triggers`` appended."""
    history = f"sqlite:///{tmp_path / 'service.db'}"
    text = PIPELINE.replace("MODULE", flow) + f"history: {history}\n" + triggers
    path = tmp_path / "service.yaml"
    path.write_text(text, encoding="utf-8")
    return path, history


def test_serve_file_runs_the_files_cron_trigger_into_its_history(flow: str, tmp_path: Path) -> None:
    path, history = service_file(
        flow,
        tmp_path,
        "triggers:\n  - {type: cron, every_seconds: 1, parameters: {n: 3}}\n"
        "service: {max_concurrent_runs: 1, grace_period: 5}\n",
    )
    done = subprocess.run(
        cli("serve", str(path), "--max-runs", "2"), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "serving with 1 trigger(s)" in done.stderr
    records = stored(history)
    assert len(records) == 2
    assert all(r.status is RunStatus.SUCCEEDED for r in records)
    assert all(r.trigger is not None and r.trigger["kind"] == "cron" for r in records)


def test_serve_options_add_triggers_to_the_files(flow: str, tmp_path: Path) -> None:
    path, history = service_file(
        flow, tmp_path, "triggers:\n  - {type: cron, cron: '0 0 1 1 *', parameters: {n: 3}}\n"
    )
    code, _, err = invoke("serve", str(path), "--every", "1", "-p", "n=2", "--max-runs", "1")
    assert code == 0, err
    assert "serving with 2 trigger(s)" in err
    [record] = stored(history)  # the --every trigger fired; the yearly one did not
    assert record.status is RunStatus.SUCCEEDED


def test_serve_file_with_a_bad_trigger_names_its_line(flow: str, tmp_path: Path) -> None:
    path, _ = service_file(
        flow, tmp_path, "triggers:\n  - {type: cron, cron: '* * *', parameters: {n: 3}}\n"
    )
    code, _, err = invoke("serve", str(path))
    assert code == 2
    assert "service.yaml:9:5" in err
    assert "trigger #1 (cron)" in err


def test_import_pirn_like_does_not_load_the_cli() -> None:
    code = (
        "import sys, json, pirn_like; "
        "print(json.dumps(sorted(m for m in sys.modules "
        "if m.split('.')[0] in {'typer', 'rich', 'click'} or m.startswith('pirn_like.cli'))))"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONSTARTUP"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert json.loads(out.stdout) == []


def test_help_lists_every_command() -> None:
    code, out, _ = invoke("--help")
    assert code == 0
    commands = "run resume serve validate graph schema runs show lineage report ui"
    for command in commands.split():
        assert command in out
