"""Canonical encoding and content hashes: type rules, codecs, stability and properties."""

from __future__ import annotations

import collections
import copy
import dataclasses
import datetime as dt
import enum
import hashlib
import math
import os
import re
import struct
import subprocess
import sys
import uuid
from decimal import Decimal
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pydantic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pirn_like._errors import UnhashableValueError
from pirn_like.core import _codecs, _hashing
from pirn_like.core._codecs import CodecRegistry, default_codecs, register_codec
from pirn_like.core._hashing import (
    ENCODING_VERSION,
    canonical_bytes,
    combine_hashes,
    content_hash,
    type_name,
)

REPO = Path(__file__).resolve().parents[1]
HASH_FORMAT = re.compile(r"^sha256:[0-9a-f]{64}$")


def all_distinct(values: list[Any]) -> bool:
    hashes = [content_hash(v) for v in values]
    return len(set(hashes)) == len(hashes)


def run_python(code: str, **env: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(REPO), **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout.strip()


# --- format, header, primitives -------------------------------------------------------------


def test_hash_format() -> None:
    for value in [5, "x", None, [1, {2: 3}], combine_hashes(["a"])]:
        assert HASH_FORMAT.match(content_hash(value))
    assert HASH_FORMAT.match(combine_hashes(["a", "b"]))


def test_canonical_bytes_carry_the_version() -> None:
    assert ENCODING_VERSION == 1
    assert canonical_bytes(None).startswith(b"pirn-like/value/\x00\x01")
    assert canonical_bytes([None]).startswith(b"pirn-like/value/\x00\x01")


def test_native_dispatch_covers_exactly_the_types_codecs_may_not_take() -> None:
    assert set(_hashing._LEAF) | set(_hashing._CONTAINERS) == _codecs._NATIVE_TYPES


def test_types_are_part_of_the_value() -> None:
    values: list[Any] = [
        1,
        1.0,
        True,
        "1",
        b"1",
        bytearray(b"1"),
        1 + 0j,
        Decimal(1),
        [1],
        (1,),
        {1},
        frozenset({1}),
        {1: None},
        None,
        0,
        0.0,
        False,
        "",
        b"",
        bytearray(),
        [],
        (),
        {},
        set(),
        frozenset(),
        "None",
        [None],
    ]
    assert all_distinct(values)


def test_equal_values_hash_equal() -> None:
    assert content_hash(10**30) == content_hash(int("1" + "0" * 30))
    assert content_hash("héllo") == content_hash("hé" + "llo")
    assert content_hash([1, (2.5, b"x")]) == content_hash([1, (2.5, b"x")])


def test_ints_of_any_size_and_sign() -> None:
    ints = [*range(-300, 301), 2**63, -(2**63), 2**64, 2**200, -(2**200), 255, -1]
    assert all_distinct(list(dict.fromkeys(ints)))


def test_a_dict_with_several_nan_keys_hashes_whatever_its_order() -> None:
    first, second = float("nan"), float("nan")
    assert content_hash({first: "b", second: "a"}) == content_hash({second: "a", first: "b"})
    assert content_hash({first: "b", second: "a"}) == (
        "sha256:" + hashlib.sha256(canonical_bytes({second: "a", first: "b"})).hexdigest()
    )


def test_dicts_in_a_list_encode_as_they_do_alone() -> None:
    # Records in a list reuse their key layout; keys equal but of another type must not.
    class Key(enum.StrEnum):
        A = "a"

    records: list[dict[Any, Any]] = [
        {"b": 1, "a": [2]},
        {"a": 3, "b": None},
        {Key.A: 1, "b": 2},
        {"a": 1, "b": 2},
        {1: "x"},
        {"b": {"a": 1}, "a": ()},
    ]
    header = len(canonical_bytes(None)) - 1
    alone = [canonical_bytes(r)[header:] for r in records]
    assert canonical_bytes(records) == b"".join(
        [canonical_bytes(None)[:header], b"l", len(records).to_bytes(8, "big"), *alone]
    )
    assert content_hash([{Key.A: 1}]) != content_hash([{"a": 1}])


def test_every_nan_is_the_same_value() -> None:
    payload_nan = struct.unpack(">d", bytes.fromhex("7ff0000000000123"))[0]
    negative_nan = -math.nan
    assert math.isnan(payload_nan)
    assert math.copysign(1, negative_nan) == -1
    assert content_hash(math.nan) == content_hash(payload_nan) == content_hash(negative_nan)
    assert content_hash([math.nan]) == content_hash([float("nan")])
    assert content_hash(complex(math.nan, 1)) == content_hash(complex(payload_nan, 1))
    assert content_hash(math.nan) != content_hash(math.inf)


def test_negative_zero_is_not_zero() -> None:
    assert content_hash(-0.0) != content_hash(0.0)
    assert content_hash([-0.0]) != content_hash([0.0])
    assert content_hash(complex(0.0, -0.0)) != content_hash(0j)


def test_strings_with_surrogates() -> None:
    assert all_distinct(["\ud800", "\udc00", "\ud83d\ude00", "\U0001f600", "a", ""])


# --- containers ------------------------------------------------------------------------------


def test_no_ambiguity_between_boundaries() -> None:
    pairs: list[tuple[Any, Any]] = [
        (["ab"], ["a", "b"]),
        (("a", "bc"), ("ab", "c")),
        ([b"ab"], [b"a", b"b"]),
        ([[1], []], [[], [1]]),
        ([[1, 2]], [[1], [2]]),
        ({"a": "b"}, {"b": "a"}),
        ({"ab": ""}, {"a": "b"}),
        ([1, 2], {1: 2}),
        ({(1, 2)}, {1, 2}),
        ("1", 1),
    ]
    for left, right in pairs:
        assert content_hash(left) != content_hash(right), (left, right)


def test_list_and_tuple_and_set_kinds_differ() -> None:
    assert all_distinct([[1, 2], (1, 2), {1, 2}, frozenset({1, 2}), {1: 2}])


def test_dict_order_does_not_matter() -> None:
    forward = {"b": 1, "a": [1, 2], 3: None, (1, "x"): {"z": 0.5}, None: b"n"}
    backward = dict(reversed(list(forward.items())))
    assert list(forward) != list(backward)
    assert content_hash(forward) == content_hash(backward)
    assert content_hash(forward) != content_hash({**forward, "b": 2})


def test_dict_keys_may_mix_types() -> None:
    mixed = {1: "int", "1": "str", b"1": "bytes", 1.5: "float", (1,): "tuple", None: "none"}
    assert content_hash(mixed) == content_hash(dict(sorted(mixed.items(), key=repr)))


def test_set_order_does_not_matter() -> None:
    words = [f"w{i}" for i in range(50)]
    assert content_hash(set(words)) == content_hash(set(reversed(words)))
    assert content_hash(frozenset(words)) == content_hash(frozenset(reversed(words)))
    assert content_hash({1, "1", (1,)}) == content_hash({(1,), "1", 1})
    assert content_hash(set(words)) != content_hash(set(words[1:]))


def test_nested_containers() -> None:
    value: dict[str, Any] = {"a": [1, {"b": (2, frozenset({3, 4}))}], "c": {5: [None, {6}]}}
    assert content_hash(value) == content_hash(copy.deepcopy(value))
    changed = copy.deepcopy(value)
    changed["c"][5][1] = {7}
    assert content_hash(value) != content_hash(changed)


def test_cycles_raise_instead_of_recursing() -> None:
    items: list[Any] = [1]
    items.append(items)
    mapping: dict[str, Any] = {}
    mapping["me"] = [mapping]
    for cyclic in (items, mapping, (items,)):
        with pytest.raises(ValueError, match="cyclic"):
            content_hash(cyclic)


def test_shared_but_acyclic_references_are_fine() -> None:
    shared = [1, 2]
    assert content_hash([shared, shared]) == content_hash([[1, 2], [1, 2]])


def test_excessive_nesting_is_a_clear_error() -> None:
    deep: list[Any] = []
    for _ in range(sys.getrecursionlimit() * 2):
        deep = [deep]
    with pytest.raises(ValueError, match="nested deeper"):
        content_hash(deep)


# --- stdlib value types -----------------------------------------------------------------------


def test_datetimes_keep_their_offset() -> None:
    naive = dt.datetime(2024, 5, 6, 7, 8, 9, 10)
    utc = naive.replace(tzinfo=dt.UTC)
    plus_one = (utc + dt.timedelta(hours=1)).replace(tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert utc == plus_one
    assert all_distinct([naive, utc, plus_one, naive.date(), naive.time(), utc.timetz()])
    assert content_hash(utc) == content_hash(dt.datetime(2024, 5, 6, 7, 8, 9, 10, dt.UTC))
    assert content_hash(dt.date(2024, 1, 1)) != content_hash(dt.datetime(2024, 1, 1))


def test_timedeltas() -> None:
    deltas = [dt.timedelta(0), dt.timedelta(days=-1), dt.timedelta(seconds=1), dt.timedelta.max]
    assert all_distinct([*deltas, dt.timedelta.min, dt.timedelta(microseconds=1)])
    assert content_hash(dt.timedelta(hours=24)) == content_hash(dt.timedelta(days=1))


def test_decimals_keep_their_exponent() -> None:
    assert Decimal("1.0") == Decimal("1.00")
    assert all_distinct([Decimal("1.0"), Decimal("1.00"), Decimal("NaN"), Decimal("-0"), 1.0])
    assert content_hash(Decimal("1.10")) == content_hash(Decimal("1.10"))


def test_uuids() -> None:
    u = uuid.UUID("12345678-1234-5678-1234-567812345678")
    assert content_hash(u) == content_hash(uuid.UUID(str(u)))
    assert all_distinct([u, uuid.UUID(int=0), u.bytes, str(u)])


class Color(enum.Enum):
    RED = 1
    GREEN = 2


class Shade(enum.Enum):
    RED = 1


class Level(enum.IntEnum):
    LOW = 1


def test_enums() -> None:
    assert content_hash(Color.RED) == content_hash(Color(1))
    assert all_distinct([Color.RED, Color.GREEN, Shade.RED, Level.LOW, 1])


def test_paths() -> None:
    assert content_hash(PurePosixPath("a/b")) == content_hash(PurePosixPath("a//b"))
    assert content_hash(PureWindowsPath("a\\b")) == content_hash(PureWindowsPath("a/b"))
    assert all_distinct([PurePosixPath("a/b"), PureWindowsPath("a/b"), "a/b", Path("a/c")])


def test_complex_numbers() -> None:
    assert all_distinct([1 + 2j, 2 + 1j, 1 + 0j, complex(1, -0.0)])


# --- structured user types --------------------------------------------------------------------


@dataclasses.dataclass
class Job:
    name: str
    sizes: list[int]
    note: str = dataclasses.field(default="", compare=False)


@dataclasses.dataclass
class OtherJob:
    name: str
    sizes: list[int]
    note: str = ""


def test_dataclasses() -> None:
    assert content_hash(Job("a", [1])) == content_hash(Job("a", [1]))
    assert content_hash(Job("a", [1])) != content_hash(Job("a", [2]))
    assert content_hash(Job("a", [1])) != content_hash(OtherJob("a", [1]))
    # compare=False fields still count: they may feed the computation.
    assert content_hash(Job("a", [1], "x")) != content_hash(Job("a", [1], "y"))


class Inner(pydantic.BaseModel):
    x: int
    tags: set[str] = set()


class Outer(pydantic.BaseModel):
    inner: Inner
    when: dt.date


class InnerTwin(pydantic.BaseModel):
    x: int
    tags: set[str] = set()


class Loose(pydantic.BaseModel, extra="allow"):
    x: int


def test_pydantic_models() -> None:
    day = dt.date(2024, 1, 1)
    model = Outer(inner=Inner(x=1, tags={"a", "b"}), when=day)
    assert content_hash(model) == content_hash(Outer(inner=Inner(x=1, tags={"b", "a"}), when=day))
    assert content_hash(model) != content_hash(Outer(inner=Inner(x=2), when=day))
    assert content_hash(Inner(x=1)) != content_hash(InnerTwin(x=1))
    # Nested models keep their class: a twin class inside changes the hash.
    twin = Outer.model_construct(inner=InnerTwin(x=1, tags={"a", "b"}), when=day)
    assert content_hash(model) != content_hash(twin)
    loose = [Loose.model_validate({"x": 1, "y": y}) for y in (2, 3)]
    assert loose[0].model_extra == {"y": 2}
    assert all_distinct([*loose, Loose(x=1)])


class Pair(NamedTuple):
    a: int
    b: int


class Label(str):
    __slots__ = ()


class TaggedList(list[int]):
    pass


def test_subclasses_of_native_types() -> None:
    assert content_hash(Pair(1, 2)) == content_hash(Pair(1, 2))
    ordered = collections.OrderedDict(a=1)
    assert all_distinct([Pair(1, 2), (1, 2), Label("x"), "x", ordered, {"a": 1}])
    assert all_distinct([collections.Counter("ab"), collections.defaultdict(int, a=1)])
    assert content_hash(TaggedList([1])) != content_hash([1])


def test_subclass_with_extra_state_is_refused() -> None:
    tagged = TaggedList([1])
    tagged.source = "somewhere"  # type: ignore[attr-defined]
    with pytest.raises(UnhashableValueError):
        content_hash(tagged)

    class Slotted(list[int]):
        __slots__ = ("extra",)

    with pytest.raises(UnhashableValueError):
        content_hash(Slotted([1]))


# --- unhashable values and codecs ------------------------------------------------------------


class Opaque:
    def __init__(self, x: int) -> None:
        self.x = x


class SubOpaque(Opaque):
    pass


class Twin:
    def __init__(self, x: int) -> None:
        self.x = x


def test_unhashable_value_names_the_type_and_the_fix() -> None:
    for value in (Opaque(1), [1, {"k": Opaque(1)}]):
        with pytest.raises(UnhashableValueError) as caught:
            content_hash(value)
        assert caught.value.type_name == type_name(Opaque)
        assert type_name(Opaque) in str(caught.value)
        assert "register_codec" in str(caught.value)
    located = caught.value.located("knot 'load'")
    assert "knot 'load'" in str(located)
    assert type_name(Opaque) in str(located)


@pytest.mark.parametrize("value", [object(), lambda: 1, memoryview(b"x"), Opaque, iter([])])
def test_other_values_are_unhashable(value: object) -> None:
    with pytest.raises(UnhashableValueError):
        content_hash(value)


def test_type_name() -> None:
    assert type_name(int) == "builtins.int"
    assert type_name(Opaque) == f"{Opaque.__module__}.Opaque"


def test_registered_codec() -> None:
    codecs = CodecRegistry()
    codecs.register(Opaque, lambda o: o.x)
    assert content_hash(Opaque(1), codecs) == content_hash(Opaque(1), codecs)
    assert content_hash(Opaque(1), codecs) != content_hash(Opaque(2), codecs)
    assert content_hash(Opaque(1), codecs) != content_hash(1)
    assert content_hash([Opaque(1)], codecs) == content_hash([Opaque(1)], codecs)
    with pytest.raises(UnhashableValueError):
        content_hash(Opaque(1))


def test_codec_applies_to_subclasses() -> None:
    codecs = CodecRegistry()
    assert codecs.lookup(SubOpaque) is None
    codecs.register(Opaque, lambda o: o.x)
    assert codecs.lookup(SubOpaque) is codecs.lookup(Opaque)
    assert content_hash(SubOpaque(1), codecs) == content_hash(Opaque(1), codecs)


def test_codec_name_separates_types_with_the_same_reduction() -> None:
    codecs = CodecRegistry()
    codecs.register(Opaque, lambda o: o.x)
    codecs.register(Twin, lambda t: t.x)
    assert content_hash(Opaque(1), codecs) != content_hash(Twin(1), codecs)
    codecs.register(Twin, lambda t: t.x, name=type_name(Opaque))
    assert content_hash(Opaque(1), codecs) == content_hash(Twin(1), codecs)


class OpaqueCodec:
    name = "tests.opaque"

    def reduce(self, value: Opaque) -> object:
        return {"x": value.x}


def test_codec_objects_and_registry_copies() -> None:
    codecs = CodecRegistry()
    codecs.register(Opaque, OpaqueCodec())
    found = codecs.lookup(Opaque)
    assert found is not None
    assert found.name == "tests.opaque"
    copied = codecs.copy()
    copied.register(Opaque, lambda o: o.x)
    assert content_hash(Opaque(1), codecs) != content_hash(Opaque(1), copied)
    renamed = CodecRegistry()
    renamed.register(Opaque, OpaqueCodec(), name="renamed")
    assert content_hash(Opaque(1), codecs) != content_hash(Opaque(1), renamed)


def test_native_types_cannot_take_a_codec() -> None:
    with pytest.raises(ValueError, match="natively"):
        CodecRegistry().register(int, str)
    with pytest.raises(TypeError):
        CodecRegistry().register(Opaque, 5)  # type: ignore[arg-type]


def test_codec_precedes_structural_encodings() -> None:
    codecs = CodecRegistry()
    codecs.register(Job, lambda j: j.name)
    assert content_hash(Job("a", [1]), codecs) == content_hash(Job("a", [2]), codecs)
    codecs.register(np.ndarray, lambda a: a.shape)
    assert content_hash(np.zeros(2), codecs) == content_hash(np.ones(2), codecs)


def test_codec_returning_its_input_is_a_cycle() -> None:
    codecs = CodecRegistry()
    codecs.register(Opaque, lambda o: o)
    with pytest.raises(ValueError, match="cyclic"):
        content_hash(Opaque(1), codecs)


class Registered:
    def __init__(self, x: int) -> None:
        self.x = x


def test_register_codec_uses_the_default_registry() -> None:
    register_codec(Registered, lambda r: r.x)
    assert default_codecs.lookup(Registered) is not None
    assert content_hash(Registered(1)) != content_hash(Registered(2))


# --- numpy, pandas, pyarrow -------------------------------------------------------------------


def test_numpy_arrays() -> None:
    a = np.arange(6, dtype=np.int64)
    assert content_hash(a) == content_hash(np.arange(6, dtype=np.int64))
    assert content_hash(a) != content_hash(a.astype(np.int32))
    assert content_hash(a) != content_hash(a.reshape(2, 3))
    assert content_hash(a.reshape(2, 3)) != content_hash(a.reshape(3, 2))
    assert content_hash(a) != content_hash(a + (a == 5))
    assert content_hash(a) != content_hash(list(range(6)))
    # Layout and byte order are not part of the value.
    grid = np.arange(12.0).reshape(3, 4)
    assert content_hash(grid.T) == content_hash(np.ascontiguousarray(grid.T))
    assert content_hash(a.astype(">i8")) == content_hash(a)


def test_numpy_nan_and_negative_zero() -> None:
    payload_nan = np.array([0x7FF0000000000123], dtype=np.uint64).view(np.float64)
    assert content_hash(payload_nan) == content_hash(np.array([np.nan]))
    assert content_hash(np.array([-0.0])) != content_hash(np.array([0.0]))
    assert content_hash(np.array([complex(np.nan, 1)])) == content_hash(
        np.array([complex(-np.nan, 1)])
    )


def test_numpy_object_structured_and_scalar_values() -> None:
    objects = np.array([1, "a", None, (2, 3)], dtype=object)
    assert content_hash(objects) == content_hash(np.array([1, "a", None, (2, 3)], dtype=object))
    assert content_hash(objects) != content_hash(np.array([1, "b", None, (2, 3)], dtype=object))
    record = np.dtype([("a", "<i4"), ("b", "<f8")])
    assert content_hash(np.zeros(2, record)) != content_hash(np.zeros(2, [("a", "<i4")]))
    assert all_distinct([np.int64(1), np.int32(1), np.float64(1), 1, 1.0, np.bool_(True)])
    assert content_hash(np.float64(2.5)) == content_hash(np.float64(2.5))
    third = np.longdouble(1) / 3
    assert content_hash(third) == content_hash(np.longdouble(1) / 3)
    masked = np.ma.masked_array([1, 2], mask=[False, True])
    assert content_hash(masked) != content_hash(np.ma.masked_array([1, 2], mask=[True, False]))


def make_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "n": [1, 2, 3],
            "x": [0.5, np.nan, -0.0],
            "s": ["a", "b", None],
            "c": pd.Categorical(["u", "v", "u"]),
            "t": pd.to_datetime(["2024-01-01", "2024-01-02", None]).tz_localize("UTC"),
            "i": pd.array([1, None, 3], dtype="Int64"),
        },
        index=pd.Index(["r1", "r2", "r3"], name="row"),
    )


def test_pandas_dataframe() -> None:
    frame = make_frame()
    assert content_hash(frame) == content_hash(make_frame())
    changed = make_frame()
    changed.loc["r2", "n"] = 20
    assert content_hash(frame) != content_hash(changed)
    assert content_hash(frame) != content_hash(frame.rename(columns={"n": "m"}))
    assert content_hash(frame) != content_hash(frame.reset_index(drop=True))
    assert content_hash(frame) != content_hash(frame.astype({"n": "int32"}))
    assert content_hash(frame) != content_hash(frame[list(reversed(frame.columns))])
    recategorized = make_frame()
    recategorized["c"] = recategorized["c"].cat.set_categories(["v", "u"])
    assert content_hash(frame) != content_hash(recategorized)


def test_pandas_numeric_columns_are_encoded_as_bytes() -> None:
    # Element by element would be just as correct but orders of magnitude slower.
    frame = pd.DataFrame({"f": [0.5, 1.5], "i": pd.array([1, None], dtype="Int64")})
    plain: Any = _codecs._dataframe_plain(frame)
    (_, (_, _, floats)), (_, ((_, _, mask), (_, _, ints))) = plain[2]
    assert all(isinstance(data, bytes) for data in (floats, mask, ints))
    assert content_hash(frame) != content_hash(frame.fillna({"i": 0}))


def test_pandas_series_index_and_scalars() -> None:
    series = pd.Series([1.0, 2.0], index=["a", "b"], name="s")
    assert content_hash(series) == content_hash(pd.Series([1.0, 2.0], index=["a", "b"], name="s"))
    assert content_hash(series) != content_hash(series.rename("t"))
    assert content_hash(series) != content_hash(pd.Series([1.0, 2.0], index=["a", "c"], name="s"))
    multi = pd.MultiIndex.from_tuples([("a", 1), ("b", 2)], names=["k", "n"])
    assert content_hash(multi) != content_hash(multi.set_names(["k", "m"]))
    assert all_distinct([pd.RangeIndex(3), pd.RangeIndex(4), pd.Index([0, 1, 2])])
    stamp = pd.Timestamp("2024-01-01 00:00:00.000000001")
    assert all_distinct([stamp, pd.Timestamp("2024-01-01"), dt.datetime(2024, 1, 1), pd.NaT, pd.NA])
    assert all_distinct([pd.Timedelta(1), pd.Period("2024-01", "M"), pd.Interval(0, 1)])


def make_table() -> pa.Table:
    return pa.table(
        {
            "n": pa.array([1, None, 3], pa.int64()),
            "s": ["a", "b", None],
            "t": pa.array([1, 2, None], pa.timestamp("ns", tz="UTC")),
            "l": [[1], [], None],
        }
    )


def test_pyarrow_table() -> None:
    table = make_table()
    assert content_hash(table) == content_hash(make_table())
    rechunked = pa.Table.from_batches(table.to_batches(max_chunksize=1))
    assert rechunked.column("n").num_chunks == 3
    assert content_hash(table) == content_hash(rechunked)
    changed = table.set_column(0, "n", pa.array([1, None, 4], pa.int64()))
    assert content_hash(table) != content_hash(changed)
    zero_not_null = table.set_column(0, "n", pa.array([1, 0, 3], pa.int64()))
    assert content_hash(table) != content_hash(zero_not_null)
    assert content_hash(table) != content_hash(table.rename_columns(["m", "s", "t", "l"]))
    assert content_hash(table) != content_hash(table.to_batches()[0])


def test_pyarrow_arrays() -> None:
    ints = pa.array([1, 2, None])
    assert content_hash(ints) == content_hash(pa.array([1, 2, None]))
    assert content_hash(ints) != content_hash(ints.cast(pa.int32()))
    assert content_hash(ints) != content_hash(pa.chunked_array([ints]))
    assert content_hash(pa.array([np.nan])) == content_hash(pa.array([-np.nan]))


@pytest.mark.parametrize(
    ("values", "kind"),
    [
        (["a", None, "", "é" * 3, "\U0001f600", "x" * 300, None], pa.string()),
        (["a", None, ""], pa.large_string()),
        ([b"\x00", None, b"", b"\xff" * 40], pa.binary()),
        ([b"\x00", None], pa.large_binary()),
        ([], pa.string()),
        ([None, None], pa.string()),
    ],
)
def test_string_and_binary_columns_hash_as_their_python_lists(
    values: list[object], kind: pa.DataType
) -> None:
    # Such columns are encoded in bulk by Arrow kernels: the bytes must be the list's own.
    array = pa.array(values, kind)
    assert canonical_bytes(array) == _codec_bytes("pyarrow.Array", (str(kind), values))
    sliced = pa.array(["skip", *values, "skip"], kind).slice(1, len(values))
    assert canonical_bytes(sliced) == canonical_bytes(array)
    chunked = pa.chunked_array([array.slice(0, 1), array.slice(1)], kind)
    assert canonical_bytes(chunked) == _codec_bytes("pyarrow.ChunkedArray", (str(kind), values))
    table = pa.table({"c": array})
    schema = [("c", str(kind), True)]
    assert canonical_bytes(table) == _codec_bytes("pyarrow.Table", (schema, [values]))


class _StandIn:
    pass


def _codec_bytes(name: str, plain: object) -> bytes:
    """What a codec called ``name`` reducing a value to ``plain`` encodes it as."""
    registry = CodecRegistry()
    registry.register(_StandIn, lambda _: plain, name=name)
    return canonical_bytes(_StandIn(), registry)


# --- combine_hashes ---------------------------------------------------------------------------


def test_combine_hashes_is_unambiguous_and_ordered() -> None:
    assert combine_hashes(["ab", "c"]) != combine_hashes(["a", "bc"])
    assert combine_hashes([]) != combine_hashes([""])
    assert combine_hashes(["a", "b"]) != combine_hashes(["b", "a"])
    assert combine_hashes(iter(["a", "b"])) == combine_hashes(("a", "b"))
    assert combine_hashes(["a", "b"]) != content_hash(["a", "b"])
    assert combine_hashes(["a", "b"]) != content_hash(("a", "b"))


# --- stability --------------------------------------------------------------------------------

STABLE_VALUES: list[tuple[Any, str]] = [
    (5, "b682cada0616304676133f2763b60caf3b3f49ea44023a818c58bc7bf52c527f"),
    ("hello", "872182c9cf39cce021a6559bb3f57fa2ab885d4181d522d0ee1145ded0ee5716"),
    ({"a": [1, 2.5, None]}, "b48517b290ebabf4d584f1352655f635c0e7b4d06dca70a48c505fecb627d771"),
    (
        (
            b"\x00",
            frozenset({1, 2}),
            -0.0,
            math.nan,
            2**70,
            Decimal("1.10"),
            uuid.UUID(int=1),
            dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
        ),
        "ce9f67f3bae07421a8e17479bdb679bbb61e4a2a191c9f8aa6c523a66ee96ef2",
    ),
    (
        np.arange(6, dtype="<i4").reshape(2, 3),
        "47d7bd704a5264a297abd1ba84a48f0d17b42861e47cc1f6ee437486d1f12ee4",
    ),
]


@pytest.mark.parametrize(("value", "expected"), STABLE_VALUES)
def test_hashes_are_stable(value: object, expected: str) -> None:
    assert content_hash(value) == f"sha256:{expected}"


def test_combined_hash_is_stable() -> None:
    assert (
        combine_hashes(["sha256:aa", "x"])
        == "sha256:3be5fc6fe8266f1643f2b49907e7d54036071cdde394e74bcd6e8e1d4349d24e"
    )


CROSS_PROCESS_VALUE = (
    "{'set': {'alpha', 'beta', 'gamma', 'delta', 'epsilon'},"
    " 'frozen': frozenset({'x', 'y', 'z', (1, 'q')}),"
    " 'dict': {f'k{i}': [i, str(i), {i % 3}] for i in range(20)},"
    " 'bytes': {b'one', b'two', b'three'}}"
)


def test_hash_is_the_same_in_other_processes() -> None:
    code = (
        "from pirn_like.core._hashing import content_hash\n"
        f"print(content_hash({CROSS_PROCESS_VALUE}))"
    )
    local = content_hash(eval(CROSS_PROCESS_VALUE))
    assert run_python(code, PYTHONHASHSEED="1") == local
    assert run_python(code, PYTHONHASHSEED="4242") == local


def test_import_does_not_load_numpy_pandas_or_pyarrow() -> None:
    code = (
        "import sys, pirn_like.core._hashing\n"
        "print(sorted(m for m in ('numpy', 'pandas', 'pyarrow') if m in sys.modules))"
    )
    assert run_python(code) == "[]"


# --- properties -------------------------------------------------------------------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(st.characters(exclude_categories=()), max_size=8)
    | st.binary(max_size=8)
)
hashables = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3).map(tuple) | st.frozensets(inner, max_size=3),
    max_leaves=6,
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=4).map(tuple)
        | st.dictionaries(hashables, inner, max_size=4)
        | st.sets(hashables, max_size=4)
        | st.frozensets(hashables, max_size=4)
    ),
    max_leaves=16,
)
PROPERTY_SETTINGS = settings(max_examples=250, deadline=None, database=None)


def normal_form(value: Any) -> Any:
    """An ordered, comparable image of a value: equal iff canonically equal.

    Type-and-value equality, recursively; NaN equals NaN, -0.0 differs from 0.0.
    """
    kind = type(value)
    if kind is float:
        return ("float", "nan" if math.isnan(value) else value.hex())
    if kind in (list, tuple):
        return (kind.__name__, tuple(normal_form(v) for v in value))
    if kind is dict:
        return ("dict", tuple(sorted((normal_form(k), normal_form(v)) for k, v in value.items())))
    if kind in (set, frozenset):
        return (kind.__name__, tuple(sorted(normal_form(v) for v in value)))
    return (kind.__name__, value)


def rebuild(value: Any) -> Any:
    """A fresh copy, with dict and set insertion orders reversed."""
    kind = type(value)
    if kind in (list, tuple):
        return kind(rebuild(v) for v in value)
    if kind is dict:
        return {rebuild(k): rebuild(v) for k, v in reversed(list(value.items()))}
    if kind in (set, frozenset):
        return kind(rebuild(v) for v in reversed(list(value)))
    if kind in (str, bytes):
        return kind(value[:0]).join([value[i : i + 1] for i in range(len(value))])
    return value


@PROPERTY_SETTINGS
@given(values)
def test_property_equal_values_hash_equal(value: Any) -> None:
    assert content_hash(copy.deepcopy(value)) == content_hash(value)


@PROPERTY_SETTINGS
@given(values)
def test_property_insertion_order_does_not_matter(value: Any) -> None:
    assert content_hash(rebuild(value)) == content_hash(value)


@PROPERTY_SETTINGS
@given(values, values)
def test_property_different_values_hash_differently(a: Any, b: Any) -> None:
    same = normal_form(a) == normal_form(b)
    assert (canonical_bytes(a) == canonical_bytes(b)) is same
    assert (content_hash(a) == content_hash(b)) is same


@PROPERTY_SETTINGS
@given(
    st.lists(st.lists(st.text("ab", max_size=2), max_size=3), max_size=3),
    st.lists(st.lists(st.text("ab", max_size=2), max_size=3), max_size=3),
)
def test_property_no_collisions_between_similar_values(a: Any, b: Any) -> None:
    assert (content_hash(a) == content_hash(b)) is (a == b)


@PROPERTY_SETTINGS
@given(values)
def test_property_canonical_bytes_are_deterministic(value: Any) -> None:
    first = canonical_bytes(value)
    assert canonical_bytes(value) == first
    assert first.startswith(_hashing._HEADER)
    assert content_hash(value) == content_hash(value)
