"""A pipeline file's ``triggers:`` and ``service:`` sections: each trigger type built
with the settings written, errors located in the file, and served triggers that run."""

from __future__ import annotations

import textwrap
from pathlib import Path

import anyio
import pytest
from _fixtures_valkey import free_port
from _webhook_helpers import http_client, serving

from pirn_like import PipelineError, RunStatus, knot, load_pipeline
from pirn_like.triggers import (
    CronTrigger,
    FileWatchTrigger,
    KafkaTrigger,
    MissedFires,
    ValKeyTrigger,
    WebhookTrigger,
    run_forever,
)
from pirn_like.yaml import ServiceSettings, load_service

HEAD = """\
name: service
nodes:
  - {id: x, type: parameter, type_: int, default: 1}
  - {id: d, type: knot, callable: double, parents: {x: x}}
"""


@knot
async def double(x: int) -> int:
    return x * 2


@knot
def size(path: str) -> int:  # a sync knot: it reads the file on a worker thread
    return len(Path(path).read_text(encoding="utf-8"))


KNOWN = {"double": double, "size": size}


def service(body: str, env: dict[str, str] | None = None) -> tuple[object, list[object], object]:
    tapestry, triggers, settings = load_service(
        HEAD + textwrap.dedent(body), known_callables=KNOWN, env=env or {}
    )
    return tapestry, list(triggers), settings


def test_cron_entries_build_cron_triggers_with_their_settings() -> None:
    _, triggers, _ = service(
        """
        triggers:
          - {type: cron, every_seconds: 300}
          - type: cron
            cron: "*/5 * * * *"
            timezone: Europe/Paris
            name: five-minutely
            parameters: {x: 4}
            missed_fires: catch_up
        """
    )
    every, cron = triggers
    assert isinstance(every, CronTrigger)
    assert isinstance(cron, CronTrigger)
    assert every.name == "every 300s"
    assert every.missed_fires is MissedFires.RUN_ONCE  # the class's default
    assert cron.name == "five-minutely"
    assert cron.missed_fires is MissedFires.CATCH_UP
    assert "Europe/Paris" in repr(CronTrigger("*/5 * * * *", timezone="Europe/Paris"))


def test_webhook_entry_takes_its_settings_and_an_interpolated_token() -> None:
    _, triggers, _ = service(
        """
        triggers:
          - type: webhook
            path: /go
            host: 0.0.0.0
            port: 9123
            token: ${TOKEN}
        """,
        env={"TOKEN": "from-the-environment"},
    )
    (hook,) = triggers
    assert isinstance(hook, WebhookTrigger)
    assert (hook.path, hook.host, hook.port) == ("/go", "0.0.0.0", 9123)
    # the token itself is exercised end to end in test_webhook_trigger_from_yaml_serves_runs


def test_webhook_auth_off_only_when_written_and_never_with_a_token() -> None:
    _, triggers, _ = service("triggers:\n  - {type: webhook, auth: false}\n")
    assert isinstance(triggers[0], WebhookTrigger)
    with pytest.raises(PipelineError, match=r"<yaml>:6:5: trigger #1 \(webhook\): auth=False"):
        service("triggers:\n  - {type: webhook, auth: false, token: abc}\n")


def test_kafka_and_valkey_entries_build_without_a_broker() -> None:
    _, triggers, _ = service(
        """
        triggers:
          - type: kafka
            topic: orders
            bootstrap_servers: [localhost:1, localhost:2]
            group_id: billing
            dead_letter_topic: orders.failed
            consumer_options: {auto_offset_reset: latest}
          - {type: kafka, topic: events, bootstrap_servers: "localhost:1"}
          - {type: valkey, url: "valkey://localhost:1/0", stream: jobs, group: workers}
          - {type: valkey, url: "valkey://localhost:1/0", channel: news}
        """
    )
    orders, events, jobs, news = triggers
    assert isinstance(orders, KafkaTrigger)
    assert isinstance(events, KafkaTrigger)
    assert (orders.topic, orders.group_id, orders.dead_letter_topic) == (
        "orders",
        "billing",
        "orders.failed",
    )
    assert (events.group_id, events.dead_letter_topic) == ("pirn-like", "events.dlq")
    assert isinstance(jobs, ValKeyTrigger)
    assert isinstance(news, ValKeyTrigger)
    assert (jobs.source, news.source) == ("stream:jobs", "channel:news")


def test_file_watch_entry_and_service_settings() -> None:
    _, triggers, settings = service(
        """
        triggers:
          - {type: file_watch, directory: /srv/in, pattern: "*.json", parameter_name: x}
        service: {max_concurrent_runs: 2, grace_period: 5, metrics_port: 9464}
        """
    )
    (watch,) = triggers
    assert isinstance(watch, FileWatchTrigger)
    assert watch.directory == Path("/srv/in")
    assert repr(watch) == "FileWatchTrigger('/srv/in', '*.json')"
    assert settings == ServiceSettings(max_concurrent_runs=2, grace_period=5.0, metrics_port=9464)
    _, none, defaults = service("")
    assert none == []
    assert defaults == ServiceSettings()


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            'triggers:\n  - {type: cron, cron: "61 * * * *"}\n',
            "<yaml>:6:5: trigger #1 (cron): '61 * * * *' is not a valid cron expression",
        ),
        (
            "triggers:\n  - {type: cron, cron: '0 * * * *', timezone: Mars/Olympus}\n",
            "<yaml>:6:5: trigger #1 (cron): unknown time zone 'Mars/Olympus'",
        ),
        (
            "triggers:\n  - {type: cron, every_seconds: 60, timezone: Europe/Paris}\n",
            "<yaml>:6:5: trigger #1 (cron): timezone='Europe/Paris' only applies to cron",
        ),
        (
            "triggers:\n  - type: cron\n    every_seconds: 60\n    parameters: {y: 2}\n",
            "<yaml>:8:17: trigger #1 (cron), parameters: unknown parameter 'y'",
        ),
        (
            "triggers:\n  - {type: webhook, path: run}\n",
            "<yaml>:6:5: trigger #1 (webhook): path must start with '/', got 'run'",
        ),
        (
            "triggers:\n  - {type: kafka, topic: t, bootstrap_servers: t, dead_letter_topic: t}\n",
            "<yaml>:6:5: trigger #1 (kafka): dead_letter_topic must differ",
        ),
        (
            "triggers:\n  - {type: valkey, url: 'http://x', stream: s}\n",
            "<yaml>:6:5: trigger #1 (valkey)",
        ),
    ],
)
def test_settings_a_trigger_refuses_fail_at_its_entry(body: str, expected: str) -> None:
    with pytest.raises(PipelineError) as info:
        service(body)
    assert str(info.value).startswith(expected), str(info.value)


def test_load_pipeline_validates_triggers_but_builds_none() -> None:
    text = HEAD + "triggers:\n  - {type: kafka, topic: t, bootstrap_servers: localhost:1}\n"
    tapestry = load_pipeline(text, known_callables=KNOWN)
    assert "d" in tapestry.knots
    with pytest.raises(PipelineError, match=r"<yaml>:6:19: unknown key 'topik'"):
        load_pipeline(
            HEAD + "triggers:\n  - {type: kafka, topik: t, bootstrap_servers: b, topic: t}\n",
            known_callables=KNOWN,
        )


@pytest.mark.anyio
async def test_file_watch_trigger_from_yaml_runs_per_file(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("hello", encoding="utf-8")
    tapestry, triggers, settings = load_service(
        textwrap.dedent(
            f"""\
            name: watch
            nodes:
              - {{id: path, type: parameter, type_: str}}
              - {{id: n, type: knot, callable: size, parents: {{path: path}}}}
            triggers:
              - type: file_watch
                directory: {tmp_path}
                pattern: "*.txt"
                existing: true
                debounce: 0
            """
        ),
        known_callables=KNOWN,
    )
    outcomes = []
    stop = anyio.Event()

    def record(outcome: object) -> None:
        outcomes.append(outcome)
        stop.set()

    with anyio.fail_after(20):
        await run_forever(
            triggers,
            tapestry,
            max_concurrent_runs=settings.max_concurrent_runs,
            handle_signals=False,
            stop=stop,
            on_outcome=record,
        )
    (outcome,) = outcomes
    assert outcome.status is RunStatus.SUCCEEDED
    assert outcome.result.outputs["n"] == 5


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # uvicorn serves on asyncio only
@pytest.mark.anyio
async def test_webhook_trigger_from_yaml_serves_runs() -> None:
    port = free_port()
    tapestry, triggers, _ = load_service(
        HEAD + f"triggers:\n  - {{type: webhook, port: {port}, token: '${{TOKEN}}'}}\n",
        known_callables=KNOWN,
        env={"TOKEN": "yaml-token"},
    )
    (hook,) = triggers
    assert isinstance(hook, WebhookTrigger)
    async with serving(hook, tapestry) as outcomes, http_client(hook) as client:
        refused = await client.post("/run", json={"x": 3})
        assert refused.status_code == 401
        taken = await client.post(
            "/run", json={"x": 3}, headers={"Authorization": "Bearer yaml-token"}
        )
        assert taken.status_code == 202, taken.text
        (outcome,) = await outcomes.wait_for(1)
    assert outcome.status is RunStatus.SUCCEEDED
