"""Bad input is refused with a clear message before anything runs."""

from __future__ import annotations

from typing import Any

import pytest

from pirn_like import (
    CycleError,
    Gate,
    Knot,
    KnotConfig,
    KnotDefinitionError,
    Map,
    Parameter,
    ParameterError,
    Reduce,
    Ref,
    RunRequest,
    Tapestry,
    UnhashableValueError,
    WiringError,
    knot,
)

pytestmark = pytest.mark.anyio

ran: list[str] = []


@knot
async def inc(v: int) -> int:
    ran.append("inc")
    return v + 1


async def test_cycle_names_the_ring() -> None:
    with Tapestry() as t:
        a = inc(v=Ref("c"), _config=KnotConfig(id="a"))
        b = inc(v=a, _config=KnotConfig(id="b"))
        inc(v=b, _config=KnotConfig(id="c"))
        x = Parameter("x", int)
        inc(v=x, _config=KnotConfig(id="outside"))
    with pytest.raises(CycleError) as info:
        await t.run(RunRequest(parameters={"x": 1}))
    ring = info.value.ring
    assert set(ring) == {"a", "b", "c"}
    assert "cycle" in str(info.value)
    for kid in ("a", "b", "c"):
        assert kid in str(info.value)
    assert ran == []


async def test_cycle_reachable_from_a_terminal_is_named() -> None:
    with Tapestry() as t:
        a = inc(v=Ref("b"), _config=KnotConfig(id="a"))
        b = inc(v=a, _config=KnotConfig(id="b"))
        inc(v=b, _config=KnotConfig(id="end"))
    with pytest.raises(CycleError, match=r"a -> b -> a|b -> a -> b"):
        t.plan()


def test_duplicate_id_is_refused() -> None:
    with Tapestry():
        inc(v=1, _config=KnotConfig(id="same"))
        with pytest.raises(WiringError, match="duplicate knot id 'same'"):
            inc(v=2, _config=KnotConfig(id="same"))


@pytest.mark.parametrize("bad", ["", "has space", "-lead", "a/b", "param:x", "x[1]"])
def test_invalid_id_is_refused(bad: str) -> None:
    with pytest.raises(WiringError, match="invalid knot id"):
        inc(v=1, _config=KnotConfig(id=bad))


def test_missing_id_is_refused() -> None:
    with pytest.raises(WiringError, match=r"needs an explicit id: pass _config=KnotConfig"):
        inc(v=1)


async def test_unknown_parameter_is_named() -> None:
    with Tapestry() as t:
        inc(v=Parameter("x", int), _config=KnotConfig(id="i"))
    with pytest.raises(
        ParameterError, match=r"unknown parameter 'y'; this tapestry declares: \['x'\]"
    ):
        await t.run(RunRequest(parameters={"x": 1, "y": 2}))


async def test_missing_required_parameter_is_named() -> None:
    with Tapestry() as t:
        inc(v=Parameter("x", int), _config=KnotConfig(id="i"))
    with pytest.raises(ParameterError, match=r"missing required parameter 'x' \(int\).*\['i'\]"):
        await t.run(RunRequest())


async def test_parameter_default_is_used() -> None:
    with Tapestry() as t:
        inc(v=Parameter("x", int, default=4), _config=KnotConfig(id="i"))
    assert (await t.run()).outputs["i"] == 5


async def test_wrong_parameter_type_names_knot_parameter_expected_and_got() -> None:
    with Tapestry() as t:
        inc(v=Parameter("x", int), _config=KnotConfig(id="i"))
    with pytest.raises(ParameterError) as info:
        await t.run(RunRequest(parameters={"x": "abc"}))
    msg = str(info.value)
    assert "parameter 'x'" in msg
    assert "knot 'param:x'" in msg
    assert "expects int" in msg
    assert "got str 'abc'" in msg
    assert "used by ['i']" in msg


def test_process_without_framework_kwargs_is_refused_at_class_definition() -> None:
    with pytest.raises(KnotDefinitionError, match=r"must end with \*\*_"):

        class Bad(Knot):
            async def process(self, x: int) -> int:
                return x


def test_non_knot_where_a_knot_is_required() -> None:
    with pytest.raises(WiringError, match=r"Map 'm': 'over' must be a knot.*got list"):
        Map(over=[1, 2], each=inc, _config=KnotConfig(id="m"))
    with pytest.raises(WiringError, match=r"Reduce 'r': 'of' must be a knot.*got int"):
        Reduce(of=5, combine=sum, _config=KnotConfig(id="r"))
    with pytest.raises(WiringError, match=r"Gate 'g': 'input' must be a knot"):
        Gate(input="x", predicate=bool, _config=KnotConfig(id="g"))
    with pytest.raises(WiringError, match=r"register\(\) takes a Knot, got int"):
        Tapestry().register(5)  # type: ignore[arg-type]


def test_unknown_and_missing_inputs_are_named() -> None:
    with pytest.raises(WiringError, match=r"knot 'i' .* has no input 'w'; declared: \['v'\]"):
        inc(v=1, w=2, _config=KnotConfig(id="i"))
    with pytest.raises(WiringError, match=r"knot 'i' .* missing required input 'v'"):
        inc(_config=KnotConfig(id="i"))


class Loader(Knot):
    async def process(self, path: str, **_: Any) -> str:
        return path


def test_knot_class_inputs_are_checked() -> None:
    with pytest.raises(WiringError, match=r"has no input 'rows'; declared: \['path'\]"):
        Loader(path="p", rows=3, _config=KnotConfig(id="load"))


async def test_dangling_ref_is_named() -> None:
    with Tapestry() as t:
        inc(v=Ref("nowhere"), _config=KnotConfig(id="i"))
    with pytest.raises(WiringError, match=r"Ref\('nowhere'\).*no knot with that id"):
        await t.run()


async def test_unknown_terminal_is_named() -> None:
    with Tapestry() as t:
        inc(v=1, _config=KnotConfig(id="i"))
    with pytest.raises(WiringError, match=r"terminal 'nope' is not a knot registered"):
        await t.run(terminals="nope")


class Opaque:
    pass


async def test_unhashable_output_names_knot_and_type() -> None:
    @knot
    async def make() -> Opaque:
        return Opaque()

    with Tapestry() as t:
        make(_config=KnotConfig(id="make"))
    result = await t.run()
    record = result.exceptions[0]
    assert record.type.endswith("UnhashableValueError")
    assert "knot 'make' output" in record.message
    assert "Opaque" in record.message
    assert "register_codec" in record.message


def test_unhashable_constant_is_named() -> None:
    k = inc(v=Opaque(), _config=KnotConfig(id="i"))  # type: ignore[arg-type]
    with pytest.raises(UnhashableValueError, match=r"knot 'i', constant 'v'"):
        _ = k.config_hash
