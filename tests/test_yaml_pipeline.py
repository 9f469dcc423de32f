"""YAML pipelines: the seed example, the format's coverage, lineage equal to Python
wiring, strict and loose callables, ${ENV}, round trip, schema, and a corpus of
malformed pipelines that each fail at the right line without running anything."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from pirn_like import (
    Aggregator,
    CachePolicy,
    ErrorPolicy,
    Gate,
    Knot,
    KnotConfig,
    Map,
    Parameter,
    PipelineError,
    Reduce,
    RetryPolicy,
    RunRequest,
    Tapestry,
    ThreadDispatcher,
    dump_pipeline,
    knot,
    load_pipeline,
    pipeline_schema,
)

CORPUS = Path(__file__).parent / "yaml_corpus"
SCHEMA_FILE = Path(__file__).resolve().parents[1] / "docs" / "pipeline.schema.json"

SEED_YAML = """\
name: simple
nodes:
  - id: x
    type: parameter
    type_: int
    has_default: true
    default: 5
  - id: doubled
    type: knot
    callable: double
    parents:
      x: x
  - id: answer
    type: knot
    callable: add
    parents:
      a: x
      b: doubled
"""


@knot
async def double(x: int) -> int:
    return x * 2


@knot
async def add(a: int, b: int) -> int:
    return a + b


def scale(value: int, factor: int) -> int:
    return value * factor


def is_even(value: int) -> bool:
    return value % 2 == 0


def total(items: list[int]) -> int:
    return sum(items)


def combine(a: int, b: int) -> int:
    return a * 100 + b


class Offset(Knot):
    async def process(self, value: int, by: int, **_: Any) -> int:
        return value + by


KNOWN: dict[str, Callable[..., Any]] = {
    "double": double,
    "add": add,
    "scale": scale,
    "is_even": is_even,
    "total": total,
    "combine": combine,
    "offset": Offset,
}


def _graph(t: Tapestry) -> dict[str, tuple[str, dict[str, str], str]]:
    """Each knot's class, parent ids and config hash: what 'the same graph' means."""
    graph: dict[str, tuple[str, dict[str, str], str]] = {}
    for knot_id, k in t.knots.items():
        parents = {
            name: getattr(p, "id", getattr(p, "knot_id", "")) for name, p in k.parents.items()
        }
        graph[knot_id] = (k.knot_class, parents, k.config_hash)
    return graph


# -- the seed example and the format --------------------------------------------------


@pytest.mark.anyio
async def test_seed_example_loads_and_runs_as_written() -> None:
    t = load_pipeline(SEED_YAML, known_callables={"double": double, "add": add})
    result = await t.run(RunRequest())
    assert result.outputs == {"param:x": 5, "doubled": 10, "answer": 15}
    result = await t.run(RunRequest(parameters={"x": 1}))
    assert result.outputs["answer"] == 3


@pytest.mark.anyio
async def test_plain_functions_become_knots() -> None:
    t = load_pipeline(
        SEED_YAML, known_callables={"double": lambda x: x * 2, "add": lambda a, b: a + b}
    )
    assert (await t.run(RunRequest())).outputs["answer"] == 15


FULL_YAML = """\
name: full
data_store: memory://
max_concurrency: 4
tag_limits: {heavy: 1}
nodes:
  - id: xs
    type: parameter
    type_: list
  - id: n
    type: parameter
    type_: int
    default: 3
  - id: scaled
    type: map
    each: scale
    bind: value
    item_concurrency: 2
    parents: {over: xs}
    constants: {factor: 10}
  - id: sum
    type: reduce
    combine: total
    parents: {of: scaled}
    tags: [heavy]
  - id: even
    type: gate
    predicate: is_even
    parents: {input: sum}
  - id: shifted
    type: knot
    callable: offset
    parents: {value: even, by: n}
    retry: {attempts: 2, initial_delay: 0}
    timeout: 5
    cache: {version: v2}
    error_policy: require_all_parents
    description: adds n
  - id: both
    type: aggregator
    combine: combine
    parents: {a: n, b: sum}
"""


def _python_full() -> Tapestry:
    with Tapestry(data_store="memory://") as t:
        xs = Parameter("xs", list)
        n = Parameter("n", int, default=3)
        scaled = Map(
            over=xs, each=scale, bind="value", max_concurrency=2, factor=10,
            _config=KnotConfig(id="scaled"),
        )  # fmt: skip
        s = Reduce(of=scaled, combine=total, _config=KnotConfig(id="sum", tags={"heavy"}))
        even = Gate(input=s, predicate=is_even, _config=KnotConfig(id="even"))
        Offset(
            value=even,
            by=n,
            _config=KnotConfig(
                id="shifted",
                retry=RetryPolicy(attempts=2, initial_delay=0),
                timeout=5,
                cache=CachePolicy(version="v2"),
                error_policy=ErrorPolicy.REQUIRE_ALL_PARENTS,
                description="adds n",
            ),
        )
        Aggregator(a=n, b=s, combine=combine, _config=KnotConfig(id="both"))
    return t


@pytest.mark.anyio
async def test_every_node_type_and_config_field_matches_python_wiring() -> None:
    from_yaml = load_pipeline(FULL_YAML, known_callables=KNOWN)
    from_python = _python_full()
    assert _graph(from_yaml) == _graph(from_python)
    for knot_id, k in from_python.knots.items():
        assert from_yaml[knot_id].config == k.config
    request = RunRequest(parameters={"xs": [1, 2, 3]})
    got, want = await from_yaml.run(request), await from_python.run(request)
    assert got.outputs == want.outputs
    assert got.outputs["shifted"] == 63
    assert got.outputs["both"] == 360
    lineage = {(r.knot_id, r.knot_config_hash, r.output_hash) for r in want.lineage}
    assert {(r.knot_id, r.knot_config_hash, r.output_hash) for r in got.lineage} == lineage


@pytest.mark.anyio
async def test_seed_lineage_hashes_equal_python_wiring() -> None:
    with Tapestry() as t:
        x = Parameter("x", int, default=5)
        d = double(x=x, _config=KnotConfig(id="doubled"))
        add(a=x, b=d, _config=KnotConfig(id="answer"))
    from_yaml = load_pipeline(SEED_YAML, known_callables={"double": double, "add": add})
    assert _graph(from_yaml) == _graph(t)
    got, want = await from_yaml.run(RunRequest()), await t.run(RunRequest())
    assert sorted((r.knot_id, r.knot_config_hash, r.output_hash) for r in got.lineage) == sorted(
        (r.knot_id, r.knot_config_hash, r.output_hash) for r in want.lineage
    )


def test_dispatcher_names_come_from_the_application() -> None:
    text = SEED_YAML + "    dispatcher: threads\n"
    t = load_pipeline(
        text, known_callables=KNOWN, dispatchers={"threads": ThreadDispatcher(max_workers=1)}
    )
    assert t["answer"].config.dispatcher == "threads"


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # aiosqlite runs on asyncio
async def test_backend_urls_come_from_env(tmp_path: Path) -> None:
    text = "name: env\nhistory: ${RUNS_DB}\ndata_store: ${VALUES:-memory://}\n" + SEED_YAML[13:]
    t = load_pipeline(text, known_callables=KNOWN, env={"RUNS_DB": f"sqlite:///{tmp_path}/r.db"})
    assert type(t.history).__name__ == "SQLiteHistory"
    async with t:
        result = await t.run(RunRequest())
        assert (await t.history.get_run(result.run_id)) is not None


def test_env_interpolation_keeps_yaml_typing() -> None:
    text = SEED_YAML.replace("default: 5", "default: ${N:-7}").replace(
        "  - id: answer", '  - id: answer\n    description: "from ${WHO}"'
    )
    t = load_pipeline(text, known_callables=KNOWN, env={"WHO": "ops"})
    param = t["param:x"]
    assert isinstance(param, Parameter)
    assert param.default == 7
    assert t["answer"].config.description == "from ops"
    quoted = SEED_YAML.replace("default: 5", 'default: "${N:-7}"')
    quoted_param = load_pipeline(quoted, known_callables=KNOWN)["param:x"]
    assert isinstance(quoted_param, Parameter)
    assert quoted_param.default == "7"


# -- callables: strict and loose ------------------------------------------------------

LOOSE_YAML = """\
name: loose
allow_callable_refs: true
nodes:
  - id: text
    type: parameter
    type_: str
  - id: flat
    type: knot
    callable: textwrap:dedent
    parents: {text: text}
  - id: again
    type: knot
    callable: textwrap.dedent
    parents: {text: flat}
"""


@pytest.mark.anyio
async def test_loose_mode_imports_callables_by_path() -> None:
    t = load_pipeline(LOOSE_YAML)
    result = await t.run(RunRequest(parameters={"text": "  a\n  b"}))
    assert result.outputs["again"] == "a\nb"
    assert t["flat"].knot_class == "textwrap.dedent"


def test_application_can_refuse_loose_mode() -> None:
    with pytest.raises(PipelineError) as info:
        load_pipeline(LOOSE_YAML, allow_callable_refs=False)
    assert "allow_callable_refs: true is refused here" in str(info.value)
    assert (info.value.line, info.value.column) == (2, 1)


def test_strict_mode_refuses_an_importable_path() -> None:
    text = LOOSE_YAML.replace("allow_callable_refs: true\n", "")
    with pytest.raises(PipelineError, match="'textwrap:dedent' is an import path, refused"):
        load_pipeline(text)


# -- errors ---------------------------------------------------------------------------


def _corpus() -> list[Path]:
    return sorted(CORPUS.glob("*.yaml"))


def test_corpus_is_large() -> None:
    assert len(_corpus()) >= 50


@pytest.mark.parametrize("path", _corpus(), ids=lambda p: p.stem)
def test_malformed_pipeline_fails_at_its_line_and_runs_nothing(path: Path) -> None:
    """Each file's first line is ``# expect: <message fragment>``; the line the error
    must name ends with ``#<`` (no marker: the error has no line, e.g. an empty file)."""
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    expected = lines[0].removeprefix("# expect: ")
    marked = [n for n, line in enumerate(lines, 1) if line.rstrip().endswith("#<")]
    calls: list[str] = []

    def recorder(name: str) -> Callable[..., Any]:
        def record(*args: Any, **kwargs: Any) -> None:
            calls.append(name)

        record.__name__ = name
        return record

    def double(x: int) -> None:
        calls.append("double")

    def add(a: int, b: int) -> None:
        calls.append("add")

    def pair(acc: int, item: int) -> None:
        calls.append("pair")

    known = {
        "double": double,
        "add": add,
        "pair": pair,
        "is_positive": recorder("is_positive"),
        "total": recorder("total"),
        "plain_class": dict,
    }
    with pytest.raises(PipelineError) as info:
        load_pipeline(path, known_callables=known, env={})
    error = info.value
    assert expected in str(error)
    assert error.file == str(path)
    assert str(error).startswith(f"{path}:")
    assert error.line == (marked[0] if marked else None)
    assert calls == []


def test_error_names_line_and_column_of_the_value() -> None:
    text = SEED_YAML.replace("callable: add", "callable: ad")
    with pytest.raises(PipelineError) as info:
        load_pipeline(text, known_callables=KNOWN)
    assert (info.value.file, info.value.line, info.value.column) == (None, 15, 15)
    assert str(info.value).startswith("<yaml>:15:15: unknown callable 'ad' (did you mean 'add'")


def test_every_format_error_is_listed() -> None:
    text = SEED_YAML.replace("type_: int", "type_: int\n    bogus: 1").replace(
        "type: knot\n    callable: add", "type: knot\n    callable: add\n    timeout: never"
    )
    with pytest.raises(PipelineError) as info:
        load_pipeline(text, known_callables=KNOWN)
    message = str(info.value)
    assert info.value.line == 6
    assert "unknown key 'bogus'" in message
    assert "and 1 more" in message
    assert ":17:14: node 'answer', timeout" in message


def test_loading_a_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(SEED_YAML.replace("parents:\n      x: x", "parents:\n      x: y"))
    with pytest.raises(PipelineError, match=rf"^{path}:12:10: node 'doubled': parent 'x'"):
        load_pipeline(path, known_callables=KNOWN)
    with pytest.raises(PipelineError, match="cannot read the pipeline"):
        load_pipeline(tmp_path / "missing.yaml")


def test_pipeline_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="the pipeline is empty"):
        load_pipeline("")


# -- round trip, schema, import cost --------------------------------------------------


@pytest.mark.anyio
async def test_dump_then_load_gives_the_same_graph() -> None:
    original = _python_full()
    text = dump_pipeline(original, known_callables=KNOWN, name="full")
    jsonschema.validate(yaml.safe_load(text), pipeline_schema())
    assert "data_store: memory://" in text
    loaded = load_pipeline(text, known_callables=KNOWN)
    assert _graph(loaded) == _graph(original)
    for knot_id, k in original.knots.items():
        assert loaded[knot_id].config == k.config
    request = RunRequest(parameters={"xs": [2, 4]})
    assert (await loaded.run(request)).outputs == (await original.run(request)).outputs


def test_dump_names_what_it_cannot_write() -> None:
    with Tapestry() as t:
        double(x=Parameter("x", int), _config=KnotConfig(id="d"))
    with pytest.raises(PipelineError, match=r"knot 'd' uses .*double, which is not in known"):
        dump_pipeline(t, known_callables={})
    with Tapestry() as t:
        Parameter("p", Path)
    with pytest.raises(PipelineError, match="parameter 'p' has type"):
        dump_pipeline(t, known_callables={})


def test_checked_in_schema_matches_the_model() -> None:
    assert json.loads(SCHEMA_FILE.read_text(encoding="utf-8")) == pipeline_schema(), (
        "regenerate docs/pipeline.schema.json: "
        "python -c 'import json, pirn_like; print(json.dumps(pirn_like.pipeline_schema(), "
        "indent=2))' > docs/pipeline.schema.json"
    )
    jsonschema.validate(yaml.safe_load(SEED_YAML), pipeline_schema())
    jsonschema.validate(yaml.safe_load(FULL_YAML), pipeline_schema())


def test_import_pirn_like_does_not_load_yaml() -> None:
    code = textwrap.dedent(
        """
        import sys, pirn_like
        assert "yaml" not in sys.modules and "pirn_like.yaml" not in sys.modules
        pirn_like.load_pipeline
        assert "yaml" in sys.modules
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True)
