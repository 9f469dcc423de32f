"""OpenLineageEmitter: run events validated against the OpenLineage JSON schema."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any
from urllib.parse import urlparse

import jsonschema
import pytest
from openlineage.client.serde import Serde
from openlineage.client.transport import Transport

from pirn_like import (
    KnotConfig,
    OpenLineageEmitter,
    Parameter,
    RunRequest,
    Tapestry,
    knot,
)

pytestmark = pytest.mark.anyio

# The constraints of the OpenLineage 2-0-2 RunEvent (https://openlineage.io/spec/2-0-2/
# OpenLineage.json) and of the facets the emitter sends, transcribed because no
# package ships the spec's JSON files.
_FACET = {
    "type": "object",
    "properties": {
        "_producer": {"type": "string", "format": "uri"},
        "_schemaURL": {"type": "string", "format": "uri"},
    },
    "required": ["_producer", "_schemaURL"],
}
_DATASET = {
    "type": "object",
    "properties": {
        "namespace": {"type": "string"},
        "name": {"type": "string"},
        "facets": {"type": "object", "additionalProperties": _FACET},
    },
    "required": ["namespace", "name"],
}
SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {
        "eventTime": {"type": "string", "format": "date-time"},
        "producer": {"type": "string", "format": "uri"},
        "schemaURL": {"type": "string", "format": "uri"},
        "eventType": {"enum": ["START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER"]},
        "run": {
            "type": "object",
            "properties": {
                "runId": {"type": "string", "format": "uuid"},
                "facets": {
                    "type": "object",
                    "additionalProperties": _FACET,
                    "properties": {"parent": {"$ref": "#/$defs/ParentRunFacet"}},
                },
            },
            "required": ["runId"],
        },
        "job": {
            "type": "object",
            "properties": {
                "namespace": {"type": "string"},
                "name": {"type": "string"},
                "facets": {
                    "type": "object",
                    "additionalProperties": _FACET,
                    "properties": {
                        "jobType": {
                            "allOf": [_FACET],
                            "required": ["processingType", "integration"],
                        }
                    },
                },
            },
            "required": ["namespace", "name"],
        },
        "inputs": {"type": "array", "items": _DATASET},
        "outputs": {"type": "array", "items": _DATASET},
    },
    "required": ["eventTime", "producer", "schemaURL", "run", "job"],
    "$defs": {
        "ParentRunFacet": {
            "allOf": [_FACET],
            "properties": {
                "run": {
                    "type": "object",
                    "properties": {"runId": {"type": "string", "format": "uuid"}},
                    "required": ["runId"],
                },
                "job": {
                    "type": "object",
                    "properties": {"namespace": {"type": "string"}, "name": {"type": "string"}},
                    "required": ["namespace", "name"],
                },
            },
            "required": ["run", "job"],
        }
    },
}

FORMATS = jsonschema.FormatChecker()


@FORMATS.checks("uri")
def _is_uri(value: object) -> bool:
    if not isinstance(value, str):
        return True
    parsed = urlparse(value)
    return bool(parsed.scheme and (parsed.netloc or parsed.path))


@FORMATS.checks("date-time", raises=ValueError)
def _is_date_time(value: object) -> bool:
    # RFC 3339: a date, "T", a time and an offset (checked here, so the test needs no
    # optional jsonschema format package).
    if not isinstance(value, str):
        return True
    return "T" in value and datetime.fromisoformat(value).tzinfo is not None


VALIDATOR = jsonschema.Draft202012Validator(SCHEMA, format_checker=FORMATS)


class Collecting(Transport):
    """A transport that keeps each event as the JSON the client would send."""

    kind = "collecting"

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def emit(self, event: Any) -> None:
        self.sent.append(json.loads(Serde.to_json(event)))


@knot
async def double(x: int) -> int:
    return x * 2


@knot
async def fails(x: int) -> int:
    raise ValueError("no good")


def test_the_schema_catches_what_it_should() -> None:
    bad = {
        "eventTime": "yesterday",
        "producer": "pirn",
        "schemaURL": "x",
        "eventType": "DONE",
        "run": {"runId": "run-1"},
        "job": {"name": "j"},
    }
    problems = {e.json_path for e in VALIDATOR.iter_errors(bad)}
    assert problems >= {"$.eventTime", "$.eventType", "$.run.runId", "$.job", "$.producer"}


async def test_runs_and_knots_become_valid_start_and_complete_events() -> None:
    transport = Collecting()
    emitter = OpenLineageEmitter(transport=transport, namespace="shop", job_name="orders")
    async with Tapestry(emitters=[emitter]) as t:
        x = Parameter("x", int)
        d = double(x=x, _config=KnotConfig(id="d"))
        double(x=d, _config=KnotConfig(id="dd"))
        result = await t.run(RunRequest(parameters={"x": 3}, labels={"team": "data"}))
        assert await t.flush_emitters()
    for event in transport.sent:
        VALIDATOR.validate(event)
    run_uuid = result.run_id.removeprefix("run-")
    assert str(uuid.UUID(run_uuid)).replace("-", "") == run_uuid  # generated ids keep their UUID
    run_events = [e for e in transport.sent if e["job"]["name"] == "orders"]
    assert [e["eventType"] for e in run_events] == ["START", "COMPLETE"]
    param_hash = result.lineage_for("param:x").output_hash
    assert all(e["run"]["runId"] == str(uuid.UUID(run_uuid)) for e in run_events)
    assert [i["name"] for i in run_events[0]["inputs"]] == [param_hash]
    assert [o["name"] for o in run_events[1]["outputs"]] == [result.lineage_for("dd").output_hash]
    tags = {t["key"]: t["value"] for t in run_events[0]["run"]["facets"]["tags"]["tags"]}
    assert tags["pirn_like.run_id"] == result.run_id  # the client adds tags of its own
    assert tags["team"] == "data"
    # Each knot that ran (parameters are datasets, not jobs) is a child job of the run.
    for knot_id in ("d", "dd"):
        rec = result.lineage_for(knot_id)
        mine = [e for e in transport.sent if e["job"]["name"] == f"orders.{knot_id}"]
        assert [e["eventType"] for e in mine] == ["START", "COMPLETE"]
        assert mine[0]["run"]["runId"] == mine[1]["run"]["runId"]
        parent = mine[1]["run"]["facets"]["parent"]
        assert parent["run"]["runId"] == run_events[0]["run"]["runId"]
        assert (parent["job"]["namespace"], parent["job"]["name"]) == ("shop", "orders")
        assert [i["name"] for i in mine[1]["inputs"]] == list(rec.parent_input_hashes.values())
        assert [o["name"] for o in mine[1]["outputs"]] == [rec.output_hash]
        hashes = [rec.output_hash, *rec.parent_input_hashes.values()]
        assert all(h is not None and h.startswith("sha256:") for h in hashes)
        assert mine[0]["eventTime"] == rec.started_at.isoformat()
        assert mine[1]["eventTime"] == rec.finished_at.isoformat()
    assert not [e for e in transport.sent if e["job"]["name"] == "orders.param:x"]


async def test_a_failed_knot_fails_its_job_and_the_run() -> None:
    transport = Collecting()
    async with Tapestry(emitters=[OpenLineageEmitter(transport=transport)]) as t:
        x = Parameter("x", int)
        fails(x=x, _config=KnotConfig(id="bad"))
        result = await t.run(RunRequest(parameters={"x": 1}, run_id="nightly-2024-06-01"))
        assert await t.flush_emitters()
    for event in transport.sent:
        VALIDATOR.validate(event)
    assert not result.succeeded
    final = {e["job"]["name"]: e for e in transport.sent if e["eventType"] != "START"}
    assert final["tapestry.bad"]["eventType"] == "FAIL"
    assert final["tapestry.bad"]["outputs"] == []
    run_end = final["tapestry"]
    assert run_end["eventType"] == "FAIL"
    assert "ValueError: no good" in run_end["run"]["facets"]["errorMessage"]["message"]
    # A run id that is not a UUID maps to a stable UUID5.
    expected = uuid.uuid5(uuid.NAMESPACE_URL, "pirn_like:run:nightly-2024-06-01")
    assert run_end["run"]["runId"] == str(expected)


async def test_knot_events_can_be_turned_off() -> None:
    transport = Collecting()
    emitter = OpenLineageEmitter(transport=transport, knot_events=False)
    async with Tapestry(emitters=[emitter]) as t:
        double(x=Parameter("x", int, default=1), _config=KnotConfig(id="d"))
        await t.run()
        assert await t.flush_emitters()
    assert [(e["job"]["name"], e["eventType"]) for e in transport.sent] == [
        ("tapestry", "START"),
        ("tapestry", "COMPLETE"),
    ]


def test_one_destination_only() -> None:
    with pytest.raises(ValueError, match="one of client, transport or url"):
        OpenLineageEmitter(transport=Collecting(), url="http://marquez:5000")
