"""Every script in examples/ runs to completion and prints what it promises."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"

EXPECTED: dict[str, str] = {
    "quickstart.py": "{'param:x': 5, 'd': 10, 'answer': 15}",
    "knot_classes.py": "outputs: {'param:length': 1.25, 'doubled': 2.5, 'label': '2.5 cm'}",
    "results_and_policies.py": "errors of the run: ['age', 'require_all']",
    "lineage_queries.py": "who produced it: [('first', 'answer'), ('second', 'answer')]",
    "node_taxonomy.py": "published: [{'users': 60, 'order': 25.5}]",
    "dispatchers.py": "per-run override: LocalDispatcher True",
    "mid_run_extension.py": "words.total  14",
    "sub_tapestry.py": "child run of: longest_word | status: succeeded",
    "execution_controls.py": "cancelled run: cancelled",
    "durable_pipeline.py": "tuesday's orders executed because: ('input:day',)",
    "demo.py": "order A-1001 was consumed by: monday/enriched[0], tuesday/enriched[0]",
    "service.py": "dead letters: ['builtins.ValueError']",
    "file_flows.py": "c.json was made by mirror[c.csv]",
    "lakehouse.py": "report linked to its snapshot: True",
    "event_store.py": "February salary: 100 as known before the fix, 110 as known now",
    "bridge_push.py": "3 events delivered, 1 resend dropped by Idempotency-Key, cursor at seq 3",
    "sql_load.py": "customer 7: bronze [2026-01-01, 2026-01-10) -> silver [2026-01-10, 2026-01-20)",
    "rag.py": "answer from sourdough; lineage reaches the documents: True",
}
# Examples that talk to a Kafka broker get the session's (PIRN_LIKE_KAFKA).
NEEDS_KAFKA = {"service.py"}


def run_example(name: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), **extra_env}
    return subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_every_example_is_covered() -> None:
    on_disk = {path.name for path in EXAMPLES.glob("*.py")}
    assert on_disk == set(EXPECTED), (
        f"add the new example(s) to EXPECTED: {sorted(on_disk - set(EXPECTED))}; "
        f"remove the missing ones: {sorted(set(EXPECTED) - on_disk)}"
    )


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(name, marks=pytest.mark.xdist_group("kafka")) if name in NEEDS_KAFKA else name
        for name in sorted(EXPECTED)
    ],
)
def test_example_runs(name: str, request: pytest.FixtureRequest) -> None:
    env: dict[str, str] = {}
    if name in NEEDS_KAFKA:
        env["PIRN_LIKE_KAFKA"] = request.getfixturevalue("kafka_server")
    done = run_example(name, **env)
    assert done.returncode == 0, f"{name} failed:\n{done.stdout}\n{done.stderr}"
    assert EXPECTED[name] in done.stdout, f"{name} printed:\n{done.stdout}\n{done.stderr}"


def test_quickstart_prints_exactly_the_outputs() -> None:
    done = run_example("quickstart.py")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "{'param:x': 5, 'd': 10, 'answer': 15}\n"
