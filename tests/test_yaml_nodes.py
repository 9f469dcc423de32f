"""YAML pipelines, the rest of the format: zip_map, dict_map, branch, source, sink and
sub_tapestry nodes, generic parameter types, ``retry_on`` and backend URLs. Each loads,
runs, and round-trips: a tapestry built in Python, dumped and loaded back, is the same
graph with the same outputs."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Literal, Optional

import jsonschema
import pytest
import yaml

from pirn_like import (
    Branch,
    DictMap,
    Knot,
    KnotConfig,
    Outcome,
    Parameter,
    ParameterError,
    PipelineError,
    RetryPolicy,
    RunRequest,
    Sink,
    SkipReason,
    Source,
    SubTapestry,
    Tapestry,
    ZipMap,
    dump_pipeline,
    knot,
    load_pipeline,
    pipeline_schema,
)


class Numbers(Source):
    async def process(self, start: int, **_: Any) -> list[int]:
        return [start, start + 1, start + 2]


class Collect(Sink):
    """Keeps what it receives, for the test to read."""

    seen: ClassVar[list[Any]] = []

    async def process(self, value: Any, **_: Any) -> None:
        Collect.seen.append(value)


def inc(x: int) -> int:
    return x + 1


class PlusTwo(SubTapestry):
    async def process(self, x: int, **_: Any) -> Knot:
        once = knot(inc)(x=x, _config=KnotConfig(id="once"))
        return knot(inc)(x=once, _config=KnotConfig(id="twice"))


def add(a: int, b: int) -> int:
    return a + b


def label(value: float, key: str) -> str:
    return f"{key}={value}"


def size(n: int) -> str:
    return "big" if n > 10 else "small"


class Flaky(Exception):
    """An application's exception, retried when named in retry_on."""


KNOWN: dict[str, Callable[..., Any]] = {
    "numbers": Numbers,
    "collect": Collect,
    "plus_two": PlusTwo,
    "inc": inc,
    "add": add,
    "label": label,
    "size": size,
    "Flaky": Flaky,
}

NODES_YAML = """\
name: shapes
nodes:
  - {id: n, type: parameter, type_: int}
  - {id: weights, type: parameter, type_: "dict[str, float]"}
  - {id: nums, type: source, callable: numbers, constants: {start: 1}}
  - {id: more, type: source, callable: numbers, constants: {start: 10}}
  - id: sums
    type: zip_map
    each: add
    over: {a: nums, b: more}
    item_concurrency: 2
  - id: labelled
    type: dict_map
    each: label
    bind: value
    key_bind: key
    parents: {over: weights}
  - id: route
    type: branch
    selector: size
    branches: [big, small]
    parents: {input: n}
  - {id: on_big, type: knot, callable: inc, parents: {x: "route[big]"}}
  - {id: on_small, type: knot, callable: inc, parents: {x: "route[small]"}}
  - {id: out, type: sink, callable: collect, parents: {value: sums}}
  - {id: nested, type: sub_tapestry, callable: plus_two, parents: {x: n}}
"""


def _python_nodes() -> Tapestry:
    with Tapestry() as t:
        n = Parameter("n", int)
        weights = Parameter("weights", dict[str, float])
        nums = Numbers(start=1, _config=KnotConfig(id="nums"))
        more = Numbers(start=10, _config=KnotConfig(id="more"))
        sums = ZipMap(
            over={"a": nums, "b": more}, each=add, max_concurrency=2,
            _config=KnotConfig(id="sums"),
        )  # fmt: skip
        DictMap(
            over=weights, each=label, bind="value", key_bind="key",
            _config=KnotConfig(id="labelled"),
        )  # fmt: skip
        route = Branch(
            input=n, selector=size, branches=["big", "small"], _config=KnotConfig(id="route")
        )
        knot(inc)(x=route["big"], _config=KnotConfig(id="on_big"))
        knot(inc)(x=route["small"], _config=KnotConfig(id="on_small"))
        Collect(value=sums, _config=KnotConfig(id="out"))
        PlusTwo(x=n, _config=KnotConfig(id="nested"))
    return t


def _graph(t: Tapestry) -> dict[str, tuple[str, dict[str, str], str]]:
    return {
        knot_id: (
            k.knot_class,
            {n: getattr(p, "id", getattr(p, "knot_id", "")) for n, p in k.parents.items()},
            k.config_hash,
        )
        for knot_id, k in t.knots.items()
    }


REQUEST = RunRequest(parameters={"n": 4, "weights": {"a": 1, "b": 2.5}})


@pytest.mark.anyio
async def test_every_node_shape_loads_runs_and_matches_python_wiring() -> None:
    Collect.seen.clear()
    from_yaml = load_pipeline(NODES_YAML, known_callables=KNOWN)
    from_python = _python_nodes()
    assert _graph(from_yaml) == _graph(from_python)
    result = await from_yaml.run(REQUEST)
    assert result.succeeded, result.exceptions
    assert result.outputs["sums"] == [11, 13, 15]
    assert result.outputs["labelled"] == {"a": "a=1.0", "b": "b=2.5"}
    assert result.outputs["route"] == "small"
    assert result.outputs["on_small"] == 5
    skipped = result.results["on_big"]
    assert skipped.outcome is Outcome.SKIPPED
    assert result.results["route[big]"].reason is SkipReason.BRANCH_NOT_SELECTED  # type: ignore[union-attr]
    assert result.outputs["nested"] == 6
    assert Collect.seen == [[11, 13, 15]]
    want = await from_python.run(REQUEST)
    assert {(r.knot_id, r.knot_config_hash, r.output_hash) for r in result.lineage} == {
        (r.knot_id, r.knot_config_hash, r.output_hash) for r in want.lineage
    }


@pytest.mark.anyio
async def test_every_node_shape_round_trips() -> None:
    original = _python_nodes()
    text = dump_pipeline(original, known_callables=KNOWN, name="shapes")
    jsonschema.validate(yaml.safe_load(text), pipeline_schema())
    assert "route[big]" in text
    assert "type: zip_map" in text
    assert "type: sub_tapestry" in text
    loaded = load_pipeline(text, known_callables=KNOWN)
    assert _graph(loaded) == _graph(original)
    assert (await loaded.run(REQUEST)).outputs == (await original.run(REQUEST)).outputs


# -- parameter types ------------------------------------------------------------------

TYPES = {
    "list[int]": list[int],
    "dict[str, float]": dict[str, float],
    "tuple[int, ...]": tuple[int, ...],
    "tuple[str, int]": tuple[str, int],
    "int | None": int | None,
    "Optional[date]": Optional[datetime.date],  # noqa: UP045 - the spelling under test
    "Literal['fast', 'slow']": Literal["fast", "slow"],
    "list[dict[str, list[int | None]]]": list[dict[str, list[int | None]]],
    "frozenset[str]": frozenset[str],
}


@pytest.mark.parametrize(("expression", "expected"), list(TYPES.items()))
def test_type_expressions_name_generic_types(expression: str, expected: Any) -> None:
    text = f'name: t\nnodes:\n  - {{id: p, type: parameter, type_: "{expression}"}}\n'
    param = load_pipeline(text)["param:p"]
    assert isinstance(param, Parameter)
    assert param.type_ == expected
    with Tapestry() as t:
        Parameter("p", expected)
    again = load_pipeline(dump_pipeline(t, known_callables={}))["param:p"]
    assert isinstance(again, Parameter)
    assert again.type_ == expected


@pytest.mark.anyio
async def test_generic_parameters_validate_their_values() -> None:
    text = """\
name: typed
nodes:
  - {id: xs, type: parameter, type_: "list[int]"}
  - {id: mode, type: parameter, type_: "Literal['fast', 'slow']", default: fast}
  - {id: limit, type: parameter, type_: "int | None", default: null}
  - {id: total, type: knot, callable: sum, parents: {iterable: xs}}
"""
    t = load_pipeline(text, known_callables={"sum": lambda iterable: sum(iterable)})
    result = await t.run(RunRequest(parameters={"xs": ["1", 2]}))
    assert result.outputs["total"] == 3
    assert result.outputs["param:mode"] == "fast"
    with pytest.raises(ParameterError, match="Input should be 'fast' or 'slow'"):
        await t.run(RunRequest(parameters={"xs": [1], "mode": "medium"}))


# -- retry_on -------------------------------------------------------------------------

RETRY_YAML = """\
name: retried
nodes:
  - {{id: x, type: parameter, type_: int}}
  - id: flaky
    type: knot
    callable: flaky
    parents: {{x: x}}
    retry: {{attempts: 3, initial_delay: 0, jitter: 0, retry_on: [{names}]}}
"""


def _flaky_counter() -> tuple[Callable[[int], int], list[int]]:
    calls: list[int] = []

    def flaky(x: int) -> int:
        calls.append(x)
        if len(calls) < 3:
            raise Flaky("not yet")
        return x

    return flaky, calls


@pytest.mark.anyio
async def test_retry_on_names_builtin_and_known_exception_classes() -> None:
    flaky, calls = _flaky_counter()
    t = load_pipeline(
        RETRY_YAML.format(names="TimeoutError, Flaky"),
        known_callables={"flaky": flaky, "Flaky": Flaky},
    )
    retry = t["flaky"].config.retry
    assert retry is not None
    assert retry.retry_on == (TimeoutError, Flaky)
    assert (await t.run(RunRequest(parameters={"x": 7}))).outputs["flaky"] == 7
    assert len(calls) == 3

    flaky, calls = _flaky_counter()
    only_value_errors = load_pipeline(
        RETRY_YAML.format(names="ValueError"), known_callables={"flaky": flaky}
    )
    result = await only_value_errors.run(RunRequest(parameters={"x": 7}))
    assert not result.succeeded
    assert len(calls) == 1


def test_retry_on_import_paths_need_loose_mode() -> None:
    strict = RETRY_YAML.format(names="json:JSONDecodeError")
    with pytest.raises(PipelineError, match="retry_on exception 'json:JSONDecodeError' is an"):
        load_pipeline(strict, known_callables={"flaky": inc})
    loose = load_pipeline("allow_callable_refs: true\n" + strict, known_callables={"flaky": inc})
    import json

    retry = loose["flaky"].config.retry
    assert retry is not None
    assert retry.retry_on == (json.JSONDecodeError,)
    with pytest.raises(PipelineError, match="retry_on 'len' is not an exception class"):
        load_pipeline(RETRY_YAML.format(names="len"), known_callables={"flaky": inc})


def test_retry_on_round_trips() -> None:
    with Tapestry() as t:
        knot(inc)(
            x=Parameter("x", int),
            _config=KnotConfig(
                id="flaky", retry=RetryPolicy(attempts=2, retry_on=(KeyError, Flaky))
            ),
        )
    text = dump_pipeline(t, known_callables={"inc": inc, "Flaky": Flaky})
    assert "retry_on:\n    - KeyError\n    - Flaky" in text
    loaded = load_pipeline(text, known_callables={"inc": inc, "Flaky": Flaky})
    assert loaded["flaky"].config == t["flaky"].config
    unnamed = dump_pipeline(t, known_callables={"inc": inc})
    assert f"{__name__}:Flaky" in unnamed  # an import path: loads in loose mode only


# -- backends -------------------------------------------------------------------------


def test_dump_writes_backend_urls_and_limits(tmp_path: Path) -> None:
    values = tmp_path / "values"
    with Tapestry(data_store=values.as_uri(), max_concurrency=3, tag_limits={"io": 1}) as t:
        knot(inc)(x=Parameter("x", int), _config=KnotConfig(id="i", tags={"io"}))
    text = dump_pipeline(t, known_callables={"inc": inc}, history="sqlite:///runs.db")
    document = yaml.safe_load(text)
    assert document["history"] == "sqlite:///runs.db"
    assert document["data_store"] == values.as_uri()
    assert "store" not in document  # the in-memory default
    assert (document["max_concurrency"], document["tag_limits"]) == (3, {"io": 1})
    loaded = load_pipeline(text, known_callables={"inc": inc})
    assert type(loaded.history).__name__ == "SQLiteHistory"
    assert (loaded.max_concurrency, dict(loaded.tag_limits)) == (3, {"io": 1})


def test_dump_never_writes_a_secret() -> None:
    with Tapestry() as t:
        knot(inc)(x=Parameter("x", int), _config=KnotConfig(id="i"))
    text = dump_pipeline(
        t,
        known_callables={"inc": inc},
        history="postgresql://app:s3cret@db:5432/runs",
        data_store="s3://bucket/values?endpoint=http://s3:9000&secret=xyz",
    )
    assert "s3cret" not in text
    assert "xyz" not in text
    document = yaml.safe_load(text)
    assert document["history"] == "postgresql://app:${HISTORY_PASSWORD}@db:5432/runs"
    assert document["data_store"].endswith("secret=${DATA_STORE_SECRET}")
    with pytest.raises(PipelineError, match=r"history: .* has a redacted secret"):
        dump_pipeline(t, known_callables={"inc": inc}, history="postgresql://app:***@db/runs")


def test_dump_asks_for_a_url_it_cannot_tell() -> None:
    with Tapestry(history="sqlite:///ignored.db") as t:
        Parameter("x", int)
    with pytest.raises(PipelineError, match=r"history: cannot tell the URL of SQLiteHistory"):
        dump_pipeline(t, known_callables={})
