"""SafeSerializer: lossless round trips, self-describing bytes, and pickle only when signed."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import math
import os
import pathlib
import pickle
import struct
import subprocess
import sys
import uuid
from collections.abc import Callable
from decimal import Decimal
from fractions import Fraction
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pydantic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from hypothesis.extra import pandas as hpd

from pirn_like._errors import SerializationError, UntrustedPayloadError
from pirn_like.core import _serialization
from pirn_like.core._serialization import MAGIC, SafeSerializer, ValueFormat
from pirn_like.protocols import Serializer

REPO = pathlib.Path(__file__).resolve().parents[1]
KEY = b"a secret key of 32 bytes, really"
PICKLE_FIX = (
    "SafeSerializer(pickle_key=<a secret of at least 16 bytes>), only if everyone who can "
    "write to the store is trusted: loading a pickle can run any code"
)
NO_FORMAT_FIX = (
    "no format accepts it. Register a ValueFormat for it (SafeSerializer(formats=[...]) or "
    ".register(...)), or opt into pickle with " + PICKLE_FIX
)
MODULE = __name__


# --- helpers ----------------------------------------------------------------------------------


def round_trip(value: object, serializer: Serializer | None = None) -> Any:
    serializer = serializer or SafeSerializer()
    return serializer.loads(serializer.dumps(value))


def canon(value: object) -> object:
    """A hashable picture of ``value`` that tells apart types, -0.0 and equal-but-other values."""
    kind = type(value)
    if kind in (list, tuple):
        return kind, tuple(canon(item) for item in value)  # type: ignore[attr-defined]
    if kind in (set, frozenset):
        return kind, frozenset(canon(item) for item in value)  # type: ignore[attr-defined]
    if kind is dict:
        return kind, tuple((canon(k), canon(v)) for k, v in value.items())  # type: ignore[attr-defined]
    # repr tells nan, -0.0, Decimal("1.00"), tz and fold apart.
    return kind, repr(value)


def format_of(data: bytes) -> str:
    assert data.startswith(MAGIC)
    assert data[len(MAGIC)] == 1
    size = data[len(MAGIC) + 1]
    return data[len(MAGIC) + 2 : len(MAGIC) + 2 + size].decode("ascii")


def header(name: str) -> bytes:
    return MAGIC + bytes([1, len(name)]) + name.encode("ascii")


def json_payload(tree: object) -> bytes:
    text = json.dumps(tree).encode()
    return header("json") + struct.pack(">Q", len(text)) + text


def run_python(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout.strip()


# --- module-level types (stored data finds classes by module and qualname) ---------------------


class Color(enum.Enum):
    RED = "red"
    PAIR = (1, 2)


class Perm(enum.Flag):
    READ = 1
    WRITE = 2


class Point(NamedTuple):
    x: int
    y: float


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Row:
    id: int
    tags: tuple[str, ...]
    scores: dict[int, float]
    derived: int = dataclasses.field(init=False, default=0)


@dataclasses.dataclass
class Node:
    name: str
    children: list[Node]


class Inner(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(frozen=True, extra="allow")

    when: dt.datetime
    path: pathlib.PurePosixPath


class Outer(pydantic.BaseModel):
    inner: Inner
    rows: list[Row]
    by_id: dict[int, Inner]
    label: str = pydantic.Field(default="x", alias="Label")
    payload: Any = None


class Numbers(pydantic.RootModel[list[int]]):
    pass


class Positive(pydantic.BaseModel):
    n: pydantic.PositiveInt


class FractionFormat:
    """A user format for a type no built-in format takes."""

    name = "fraction"

    def accepts(self, value: Any) -> bool:
        return type(value) is Fraction

    def dumps(self, value: Any) -> bytes:
        return str(value).encode()

    def loads(self, data: bytes) -> object:
        return Fraction(data.decode())


class Opaque:
    """No safe format stores this."""

    def __init__(self, fn: Callable[[int], int]) -> None:
        self.fn = fn


class Evil:
    """Unpickling this creates a file: what a malicious payload would do."""

    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, ...]:
        return (pathlib.Path.touch, (self.marker,))


# --- the payload header -----------------------------------------------------------------------


def test_bytes_name_their_format() -> None:
    serializer = SafeSerializer(pickle_key=KEY)
    assert format_of(serializer.dumps({"a": [1, 2]})) == "json"
    assert format_of(serializer.dumps(np.zeros(3))) == "npy"
    assert format_of(serializer.dumps(np.float32(1))) == "npy"
    assert format_of(serializer.dumps(pa.table({"a": [1]}))) == "arrow"
    assert format_of(serializer.dumps(pd.DataFrame({"a": [1]}))) == "pandas"
    assert format_of(serializer.dumps(Opaque(abs))) == "pickle"
    assert format_of(serializer.dumps({"arrays": [np.zeros(3)]})) == "json"


def test_safe_serializer_is_a_serializer() -> None:
    serializer: Serializer = SafeSerializer()
    assert serializer.loads(serializer.dumps([1])) == [1]
    assert _serialization.__all__ == ["SafeSerializer", "ValueFormat"]


def test_unknown_magic_is_refused() -> None:
    with pytest.raises(SerializationError) as info:
        SafeSerializer().loads(b'{"a": 1}')
    assert str(info.value) == (
        "stored bytes do not start with SafeSerializer's magic b'\\x93PLV': found "
        "b'{\"a\": 1}'; they were not written by pirn_like's SafeSerializer"
    )
    with pytest.raises(SerializationError, match="found b''"):
        SafeSerializer().loads(b"")


def test_other_payload_version_is_refused() -> None:
    data = bytearray(SafeSerializer().dumps([1]))
    data[len(MAGIC)] = 2
    with pytest.raises(SerializationError) as info:
        SafeSerializer().loads(bytes(data))
    assert str(info.value) == (
        "stored bytes use payload version 2, but this pirn_like reads version 1; they were "
        "written by another pirn_like version"
    )


def test_unknown_format_is_refused() -> None:
    data = SafeSerializer([FractionFormat()]).dumps(Fraction(1, 3))
    with pytest.raises(SerializationError) as info:
        SafeSerializer().loads(data)
    assert str(info.value) == (
        "stored bytes use format 'fraction', which this SafeSerializer does not have; register "
        "the ValueFormat named 'fraction' (known formats: ['arrow', 'json', 'npy', 'pandas', "
        "'pickle'])"
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (MAGIC + b"\x01", "stored bytes are truncated inside their header"),
        (MAGIC + b"\x01\x09json", "stored bytes have a corrupt format name b'json'"),
        (MAGIC + b"\x01\x02j!", "stored bytes have a corrupt format name b'j!'"),
        (header("json"), "stored 'json' bytes hold no JSON text"),
        (header("json") + b"\x00\x00\x00", "stored bytes are truncated inside a section length"),
        (header("json") + struct.pack(">Q", 9) + b"[1]", "stored bytes are truncated inside a"),
        (json_payload({"$": "nope"}), "stored JSON holds an unknown tag 'nope'"),
        (json_payload({"$": "tuple"}), "cannot read stored bytes of format 'json': KeyError: 'v'"),
        (
            json_payload({"$": "path", "c": "Evil", "v": "x"}),
            "stored JSON holds an unknown path class",
        ),
        (header("npy") + b"a\x93NUMPY", "cannot read stored bytes of format 'npy'"),
    ],
)
def test_malformed_bytes_raise_serialization_error(data: bytes, message: str) -> None:
    with pytest.raises(SerializationError) as info:
        SafeSerializer().loads(data)
    assert str(info.value).startswith(message)


# --- builtins as tagged JSON ------------------------------------------------------------------

timezones = (
    st.none()
    | st.just(dt.UTC)
    | st.timezones()
    | st.builds(
        dt.timezone,
        st.timedeltas(min_value=dt.timedelta(hours=-23), max_value=dt.timedelta(hours=23)),
        st.text(min_size=1, max_size=5),
    )
)
hashable_leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=2**64, max_value=2**300)
    | st.floats(allow_nan=False)
    | st.text(st.characters(codec=None))
    | st.binary()
    | st.complex_numbers(allow_nan=False)
    | st.decimals(allow_nan=False)
    | st.uuids()
    | st.datetimes(timezones=timezones)
    | st.dates()
    | st.times(timezones=timezones)
    | st.timedeltas()
    | st.sampled_from([Color.RED, Color.PAIR, Perm.READ, Perm.READ | Perm.WRITE])
    | st.builds(pathlib.PurePosixPath, st.text())
    | st.builds(pathlib.PureWindowsPath, st.text())
    | st.builds(Point, st.integers(), st.floats(allow_nan=False))
)
hashables = st.recursive(
    hashable_leaves,
    lambda inner: st.tuples(inner, inner) | st.frozensets(inner, max_size=3),
    max_leaves=6,
)
leaves = (
    hashable_leaves
    | st.floats()
    | st.complex_numbers()
    | st.decimals()
    | st.binary().map(bytearray)
)
values = st.recursive(
    leaves,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=4).map(tuple)
        | st.dictionaries(hashables, inner, max_size=4)
        | st.dictionaries(st.text(max_size=3), inner, max_size=4)
        | st.sets(hashables, max_size=4)
        | st.frozensets(hashables, max_size=4)
    ),
    max_leaves=25,
)


@settings(max_examples=400, deadline=None)
@given(values)
def test_builtins_round_trip_with_their_types(value: object) -> None:
    assert canon(round_trip(value)) == canon(value)


@pytest.mark.parametrize(
    "value",
    [
        -0.0,
        [0.0, -0.0],
        math.nan,
        (math.inf, -math.inf),
        complex(math.nan, -0.0),
        2**4000 * 3,
        -(2**70),
        True,
        {True: 1, 2: False},
        {1: "int key", "1": "str key", (1, 2): "tuple key", None: "none key"},
        {"$": "not a tag", "v": 1},
        {"nested": {"$": "blob", "f": "npy", "i": 0}},
        [(), [], {}, set(), frozenset()],
        "lone surrogate \ud800 and ünïcode",
        b"\x00\xff",
        bytearray(b"mutable"),
        Decimal("1.00"),
        Decimal("-0"),
        Decimal("sNaN"),
        dt.datetime(2021, 11, 7, 1, 30, fold=1, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
        dt.datetime(2024, 3, 1, 12, 0, 0, 5),
        dt.time(23, 59, 59, 999999, tzinfo=dt.UTC),
        dt.timedelta(days=-3, microseconds=1),
        uuid.UUID(int=7),
        pathlib.Path("relative/file.txt"),
        pathlib.PureWindowsPath(r"C:\data\x.csv"),
        Color.PAIR,
        Perm.READ | Perm.WRITE,
        Point(1, 2.5),
    ],
)
def test_edge_values_round_trip(value: object) -> None:
    assert canon(round_trip(value)) == canon(value)


def test_zoneinfo_survives_with_its_key() -> None:
    from zoneinfo import ZoneInfo

    when = dt.datetime(2021, 10, 31, 2, 30, fold=1, tzinfo=ZoneInfo("Europe/Berlin"))
    back = round_trip(when)
    assert back == when
    assert back.tzinfo is ZoneInfo("Europe/Berlin")
    assert back.fold == 1
    assert back.utcoffset() == dt.timedelta(hours=1)


def test_dict_keys_keep_their_types() -> None:
    back = round_trip({1: "a", 1.5: "b", (2, "x"): "c", frozenset({3}): "d"})
    assert [type(k) for k in back] == [int, float, tuple, frozenset]


def test_shared_references_are_copied_and_cycles_refused() -> None:
    shared = [1]
    back = round_trip([shared, shared])
    assert back == [[1], [1]]
    cyclic: list[object] = [1]
    cyclic.append({"again": cyclic})
    with pytest.raises(SerializationError) as info:
        SafeSerializer().dumps({"c": cyclic})
    assert str(info.value) == (
        "cannot serialize value['c'][1]['again'] of type 'builtins.list': it contains itself, "
        "and only pickle stores cycles. Opt into pickle with " + PICKLE_FIX
    )


def test_too_deep_nesting_is_a_serialization_error() -> None:
    deep: list[object] = []
    for _ in range(sys.getrecursionlimit() * 2):
        deep = [deep]
    with pytest.raises(SerializationError, match="nested deeper than the recursion limit"):
        SafeSerializer().dumps(deep)


# --- pydantic models, dataclasses, enums, namedtuples -----------------------------------------


def make_outer() -> Outer:
    when = dt.datetime(2024, 5, 1, tzinfo=dt.UTC)
    inner = Inner.model_validate(
        {"when": when, "path": pathlib.PurePosixPath("/a"), "extra_field": (1, 2)}
    )
    rows = [Row(id=1, tags=("x",), scores={1: 0.5}), Row(id=2, tags=(), scores={})]
    return Outer(inner=inner, rows=rows, by_id={7: inner}, Label="named")


def test_models_and_dataclasses_round_trip_nested() -> None:
    outer = make_outer()
    value = {"outer": outer, "nodes": [Node("root", [Node("leaf", [])])], "numbers": Numbers([1])}
    back = round_trip(value)
    assert back == value
    assert type(back["outer"].rows[0]) is Row
    assert type(back["outer"].inner) is Inner
    assert list(back["outer"].by_id) == [7]
    assert back["outer"].label == "named"
    assert back["outer"].inner.model_extra == {"extra_field": (1, 2)}
    assert type(back["numbers"]) is Numbers
    assert type(back["nodes"][0].children[0]) is Node


def test_dataclass_fields_outside_init_are_restored() -> None:
    row = Row(id=1, tags=(), scores={})
    object.__setattr__(row, "derived", 42)
    back = round_trip(row)
    assert back == row
    assert back.derived == 42


def test_models_are_validated_on_load() -> None:
    data = json_payload({"$": "model", "m": MODULE, "q": "Positive", "v": [["n", -1]]})
    with pytest.raises(SerializationError, match="ValidationError: 1 validation error"):
        SafeSerializer().loads(data)
    assert round_trip(Positive(n=3)) == Positive(n=3)


def test_local_classes_cannot_be_found_again() -> None:
    @dataclasses.dataclass
    class Local:
        x: int

    with pytest.raises(SerializationError) as info:
        SafeSerializer().dumps({"items": [Local(1)]})
    assert str(info.value) == (
        f"cannot serialize value['items'][0] of type "
        f"'{MODULE}.test_local_classes_cannot_be_found_again.<locals>.Local': loading could not "
        f"find its class again as "
        f"'{MODULE}.test_local_classes_cannot_be_found_again.<locals>.Local': define the class "
        f"at module level. Opt into pickle with {PICKLE_FIX}"
    )
    back = round_trip({"items": [Local(1)]}, SafeSerializer(pickle_key=KEY))
    assert back["items"][0].x == 1


def test_loading_never_imports_a_module_named_by_stored_data() -> None:
    assert "this" not in sys.modules
    data = json_payload({"$": "dataclass", "m": "this", "q": "Zen", "v": []})
    with pytest.raises(SerializationError) as info:
        SafeSerializer().loads(data)
    assert str(info.value) == (
        "stored data holds a dataclass of class 'this.Zen', but module 'this' is not imported; "
        "import it before loading (loading never imports modules named by stored data)"
    )
    assert "this" not in sys.modules


def test_loading_needs_the_class_in_its_module() -> None:
    data = json_payload({"$": "model", "m": MODULE, "q": "Gone", "v": []})
    with pytest.raises(SerializationError) as info:
        SafeSerializer().loads(data)
    assert str(info.value) == (
        f"stored data holds a pydantic model of class '{MODULE}.Gone', which module "
        f"'{MODULE}' does not define; import the module that does before loading, or was it "
        "renamed?"
    )


@pytest.mark.parametrize(
    ("tag", "module", "qualname", "what"),
    [
        ("dataclass", "os", "system", "dataclass"),
        ("dataclass", "subprocess", "Popen", "dataclass"),
        ("model", MODULE, "Row", "pydantic model"),
        ("enum", "builtins", "int", "enum member"),
        ("namedtuple", "builtins", "tuple", "namedtuple"),
    ],
)
def test_stored_class_must_be_of_the_stored_kind(
    tag: str, module: str, qualname: str, what: str
) -> None:
    data = json_payload({"$": tag, "m": module, "q": qualname, "v": []})
    with pytest.raises(SerializationError) as info:
        SafeSerializer().loads(data)
    assert str(info.value) == (
        f"stored data names '{module}.{qualname}' as a {what} class, but it is not one; "
        "refusing to call it"
    )


# --- numpy ------------------------------------------------------------------------------------

dtypes = st.sampled_from(
    [
        *("float16", "float32", "float64", ">f8", "complex64"),
        *("bool", "int8", "uint16", "int64", "<U3", "S2", "datetime64[ns]", "timedelta64[s]"),
    ]
)


@settings(max_examples=150, deadline=None)
@given(
    dtypes.flatmap(
        lambda d: hnp.arrays(np.dtype(d), hnp.array_shapes(min_dims=0, max_dims=3, min_side=0))
    )
)
def test_numpy_arrays_round_trip_bit_for_bit(array: np.ndarray[Any, Any]) -> None:
    back = round_trip(array)
    assert type(back) is np.ndarray
    assert back.dtype == array.dtype
    assert back.shape == array.shape
    assert back.tobytes() == array.tobytes()


def test_numpy_layout_and_nesting() -> None:
    fortran = np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3))
    structured = np.array([(1, 2.5)], dtype=[("a", "<i4"), ("b", "<f8")])
    back = round_trip({"f": fortran, "s": structured, "list": [np.ones(2)]})
    assert back["f"].flags.f_contiguous
    assert back["f"].dtype == np.float32
    np.testing.assert_array_equal(back["f"], fortran)
    assert back["s"].dtype == structured.dtype
    assert back["s"].tobytes() == structured.tobytes()
    assert back["list"][0].tolist() == [1.0, 1.0]


@pytest.mark.parametrize(
    "scalar",
    [
        np.float32(1.5),
        np.float64(-0.0),
        np.int8(-3),
        np.uint64(2**64 - 1),
        np.bool_(True),
        np.complex128(1j),
        np.str_("x"),
        np.bytes_(b"y"),
        np.datetime64("2024-01-01", "D"),
    ],
)
def test_numpy_scalars_keep_their_type(scalar: np.generic) -> None:
    back = round_trip(scalar)
    assert type(back) is type(scalar)
    assert back.tobytes() == scalar.tobytes()


def test_numpy_object_arrays_need_pickle() -> None:
    array = np.array([1, "x", None], dtype=object)
    with pytest.raises(SerializationError) as info:
        SafeSerializer().dumps({"w": [array]})
    assert str(info.value) == (
        "cannot serialize value['w'][0] of type 'numpy.ndarray': format 'npy' refused it: numpy "
        "arrays of dtype object hold Python objects, which only pickle stores. Opt into pickle "
        "with " + PICKLE_FIX
    )
    serializer = SafeSerializer(pickle_key=KEY)
    data = serializer.dumps({"w": [array]})
    assert format_of(data) == "pickle"
    back: Any = serializer.loads(data)
    assert back["w"][0].tolist() == [1, "x", None]


def test_numpy_masked_arrays_are_not_taken_for_plain_arrays() -> None:
    with pytest.raises(SerializationError, match=r"of type 'numpy\.ma\.MaskedArray': no format"):
        SafeSerializer().dumps(np.ma.masked_array([1, 2], mask=[False, True]))


# --- pandas and pyarrow -----------------------------------------------------------------------


def assert_frames_identical(back: pd.DataFrame, frame: pd.DataFrame) -> None:
    assert type(back) is pd.DataFrame
    pd.testing.assert_frame_equal(
        back, frame, check_exact=True, check_index_type=True, check_column_type=True
    )
    assert back.dtypes.tolist() == frame.dtypes.tolist()
    assert back.columns.tolist() == frame.columns.tolist()
    assert back.columns.names == frame.columns.names
    assert back.index.names == frame.index.names
    assert type(back.index) is type(frame.index)
    assert type(back.columns) is type(frame.columns)


FRAMES = {
    "dtypes": pd.DataFrame(
        {
            "i": [1, 2, 3],
            "f32": np.array([1.5, np.nan, -0.0], dtype=np.float32),
            "u8": np.array([0, 1, 255], dtype=np.uint8),
            "s": ["x", None, "z"],
            "obj": pd.Series(["a", "b", "c"], dtype=object),
            "cat": pd.Categorical(["lo", "hi", "lo"], categories=["lo", "hi"], ordered=True),
            "nullable": pd.array([1, None, 3], dtype="Int64"),
            "flag": pd.array([True, None, False], dtype="boolean"),
            "when": pd.date_range("2024-01-01", periods=3, tz="Europe/Berlin"),
            "gap": pd.to_timedelta([1, 2, 3], unit="s"),
            "b": [True, False, True],
        }
    ),
    "named_index": pd.DataFrame({"v": [1.0, 2.0]}, index=pd.Index(["a", "b"], name="key")),
    "object_index": pd.DataFrame({"v": [1, 2]}, index=pd.Index(["a", "b"], dtype=object)),
    "range_index": pd.DataFrame({"v": [1, 2]}, index=pd.RangeIndex(10, 14, 2)),
    "multi_index": pd.DataFrame(
        {"v": [1, 2]}, index=pd.MultiIndex.from_tuples([("a", 1), ("b", 2)], names=["l", "n"])
    ),
    "datetime_index_freq": pd.DataFrame(
        {"v": [1, 2, 3]}, index=pd.date_range("2024-01-01", periods=3, freq="h", name="t")
    ),
    "int_columns": pd.DataFrame({1: [1], 2: [2]}),
    "tuple_columns": pd.DataFrame({("a", 1): [1], ("b", 2): [2]}),
    "duplicate_columns": pd.DataFrame([[1, 2.5]], columns=["a", "a"]),
    "named_columns": pd.DataFrame({"a": [1]}).rename_axis(columns="fields"),
    "empty": pd.DataFrame(),
    "no_rows": pd.DataFrame({"a": pd.Series([], dtype="float32")}),
}


@pytest.mark.parametrize("name", FRAMES)
def test_pandas_frames_round_trip(name: str) -> None:
    frame = FRAMES[name]
    assert_frames_identical(round_trip(frame), frame)


@settings(max_examples=60, deadline=None)
@given(
    hpd.data_frames(
        [
            hpd.column("a", dtype=np.float32),
            hpd.column("b", dtype=np.int16),
            hpd.column("c", dtype=bool),
            hpd.column("d", elements=st.text(max_size=5)),
        ],
        index=hpd.indexes(dtype=np.int64, max_size=8),
    )
)
def test_pandas_frames_round_trip_property(frame: pd.DataFrame) -> None:
    assert_frames_identical(round_trip(frame), frame)


@pytest.mark.parametrize(
    "series",
    [
        pd.Series([1.0, 2.0], name="s"),
        pd.Series([1, 2]),
        pd.Series(["x"], name=("a", 1), index=pd.Index([5], name="i")),
        pd.Series(pd.Categorical(["a", "b"]), name=3),
    ],
)
def test_pandas_series_round_trip(series: pd.Series) -> None:
    back = round_trip(series)
    assert type(back) is pd.Series
    pd.testing.assert_series_equal(back, series, check_exact=True, check_index_type=True)
    assert back.name == series.name


def test_pandas_frames_nested_in_containers() -> None:
    frames: dict[str, Any] = {"left": FRAMES["named_index"], "right": [FRAMES["multi_index"]]}
    back = round_trip(frames)
    assert_frames_identical(back["left"], frames["left"])
    assert_frames_identical(back["right"][0], frames["right"][0])


def test_pandas_values_arrow_cannot_convert_need_pickle() -> None:
    mixed = pd.DataFrame({"a": [1, "x"]})
    with pytest.raises(SerializationError) as info:
        SafeSerializer().dumps(mixed)
    assert str(info.value).startswith(
        "cannot serialize value of type 'pandas.DataFrame': format 'pandas' refused it: pyarrow "
        "cannot convert it: "
    )
    assert str(info.value).endswith("Opt into pickle with " + PICKLE_FIX)
    back = round_trip(mixed, SafeSerializer(pickle_key=KEY))
    pd.testing.assert_frame_equal(back, mixed)


@pytest.mark.parametrize(
    "table",
    [
        pa.table({"a": [1, None, 3], "b": ["x", "y", None]}),
        pa.table({"nested": [[1, 2], [], None], "f": pa.array([1.5, 2, 3], pa.float32())}),
        pa.table({"d": pa.array(["a", "b", "a"]).dictionary_encode()}),
        pa.table({"t": pa.array([0, 1], pa.timestamp("ms", tz="UTC"))}).replace_schema_metadata(
            {"origin": "test"}
        ),
        pa.table({"a": pa.array([], pa.int8())}),
    ],
)
def test_arrow_tables_round_trip(table: pa.Table) -> None:
    back = round_trip(table)
    assert type(back) is pa.Table
    assert back.equals(table, check_metadata=True)


def test_arrow_record_batches_round_trip() -> None:
    batch = pa.record_batch({"a": [1, 2], "b": ["x", None]})
    back = round_trip({"batch": batch})["batch"]
    assert type(back) is pa.RecordBatch
    assert back.equals(batch, check_metadata=True)


def test_importing_the_module_loads_no_optional_library() -> None:
    loaded = run_python(
        "import sys, pirn_like.core._serialization; "
        "print(sorted({'numpy', 'pandas', 'pyarrow', 'cloudpickle'} & set(sys.modules)))"
    )
    assert loaded == "[]"


# --- user formats -----------------------------------------------------------------------------


def test_user_formats_store_values_at_the_root_and_nested() -> None:
    serializer = SafeSerializer([FractionFormat()])
    data = serializer.dumps(Fraction(1, 3))
    assert format_of(data) == "fraction"
    assert serializer.loads(data) == Fraction(1, 3)
    nested = {"ratios": [Fraction(2, 7), (Fraction(-1, 2),)]}
    assert canon(serializer.loads(serializer.dumps(nested))) == canon(nested)


def test_register_adds_a_format_consulted_before_built_in_ones() -> None:
    class RowAsText:
        name = "row-text"

        def accepts(self, value: Any) -> bool:
            return type(value) is Row

        def dumps(self, value: Any) -> bytes:
            return str(value.id).encode()

        def loads(self, data: bytes) -> object:
            return Row(id=int(data), tags=(), scores={})

    serializer = SafeSerializer()
    serializer.register(RowAsText())
    data = serializer.dumps(Row(id=5, tags=(), scores={}))
    assert format_of(data) == "row-text"
    assert serializer.loads(data) == Row(id=5, tags=(), scores={})


def test_unsupported_values_name_their_type_and_path() -> None:
    with pytest.raises(SerializationError) as info:
        SafeSerializer().dumps({"rows": [1, 2, 3, Fraction(1, 2)]})
    assert str(info.value) == (
        "cannot serialize value['rows'][3] of type 'fractions.Fraction': " + NO_FORMAT_FIX
    )
    with pytest.raises(SerializationError) as info:
        SafeSerializer().dumps(Fraction(1, 2))
    assert str(info.value) == (
        "cannot serialize value of type 'fractions.Fraction': " + NO_FORMAT_FIX
    )
    with pytest.raises(SerializationError) as info:
        SafeSerializer().dumps({(1, Fraction(1, 2)): "v"})
    assert str(info.value).startswith("cannot serialize value.keys()[0][1] of type 'fractions")
    with pytest.raises(SerializationError) as info:
        SafeSerializer().dumps([make_outer().model_copy(update={"payload": {Fraction(1)}})])
    assert str(info.value).startswith("cannot serialize value[0].payload{...} of type 'fractions")


def test_foreign_tzinfo_is_refused() -> None:
    class Fixed(dt.tzinfo):
        def utcoffset(self, _dt: dt.datetime | None) -> dt.timedelta:
            return dt.timedelta(0)

    with pytest.raises(SerializationError) as info:
        SafeSerializer().dumps([dt.datetime(2024, 1, 1, tzinfo=Fixed())])
    assert str(info.value) == (
        "cannot serialize value[0] of type 'datetime.datetime': its tzinfo of type "
        f"'{MODULE}.test_foreign_tzinfo_is_refused.<locals>.Fixed' has no safe encoding: use "
        "datetime.timezone or zoneinfo.ZoneInfo. Opt into pickle with " + PICKLE_FIX
    )


@pytest.mark.parametrize(
    ("name", "error", "message"),
    [
        (
            "",
            ValueError,
            "a ValueFormat's name must be 1-64 characters from [A-Za-z0-9_.-], got ''",
        ),
        ("a b", ValueError, "a ValueFormat's name must be 1-64 characters"),
        ("json", ValueError, "format name 'json' is already taken; choose another"),
        ("pickle", ValueError, "format name 'pickle' is already taken; choose another"),
        ("npy", ValueError, "format name 'npy' is already taken; choose another"),
        ("fraction", ValueError, "format name 'fraction' is already taken; choose another"),
    ],
)
def test_register_checks_the_format(name: str, error: type[Exception], message: str) -> None:
    fmt = FractionFormat()
    fmt.name = name
    serializer = SafeSerializer([FractionFormat()])
    with pytest.raises(error) as info:
        serializer.register(fmt)
    assert str(info.value).startswith(message)


def test_register_needs_the_format_methods() -> None:
    class NoLoads:
        name = "half"

        def accepts(self, value: Any) -> bool:
            return False

    with pytest.raises(TypeError) as info:
        SafeSerializer().register(NoLoads())  # type: ignore[arg-type]
    assert str(info.value) == "format 'half' lacks the ValueFormat methods ['dumps', 'loads']"


def test_value_format_is_a_protocol_user_classes_match() -> None:
    fmt: ValueFormat = FractionFormat()
    assert fmt.name == "fraction"


# --- opt-in signed pickle ---------------------------------------------------------------------


def make_adder(n: int) -> Callable[[int], int]:
    return lambda x: x + n


def test_pickle_key_must_be_a_long_enough_secret() -> None:
    with pytest.raises(ValueError) as info:
        SafeSerializer(pickle_key=b"short")
    assert str(info.value) == "pickle_key must be a secret of at least 16 bytes, got 5"
    with pytest.raises(TypeError, match="pickle_key must be bytes, got str"):
        SafeSerializer(pickle_key="a string key of many chars")  # type: ignore[arg-type]


def test_signed_pickle_round_trips_closures_and_lambdas() -> None:
    serializer = SafeSerializer(pickle_key=KEY)
    value = {"rows": [1, Opaque(make_adder(3))], "f": lambda x: x * 2}
    data = serializer.dumps(value)
    assert format_of(data) == "pickle"
    back: Any = serializer.loads(data)
    assert back["rows"][0] == 1
    assert back["rows"][1].fn(1) == 4
    assert back["f"](5) == 10


def test_pickle_is_used_only_when_no_safe_format_takes_the_value() -> None:
    serializer = SafeSerializer(pickle_key=KEY)
    assert format_of(serializer.dumps({"a": (1, 2)})) == "json"
    assert format_of(serializer.dumps(make_outer())) == "json"


def test_without_a_key_unsupported_values_are_refused() -> None:
    with pytest.raises(SerializationError) as info:
        SafeSerializer().dumps({"rows": [1, Opaque(abs)]})
    assert str(info.value) == (
        f"cannot serialize value['rows'][1] of type '{MODULE}.Opaque': " + NO_FORMAT_FIX
    )


def test_pickle_payload_is_refused_without_a_key() -> None:
    data = SafeSerializer(pickle_key=KEY).dumps(Opaque(abs))
    with pytest.raises(UntrustedPayloadError) as info:
        SafeSerializer().loads(data)
    assert str(info.value) == (
        "stored bytes hold a pickle, and pickled data is never loaded unless the serializer "
        "has the key it was signed with: SafeSerializer(pickle_key=...), for stores only "
        "trusted parties write to"
    )


def test_tampered_pickle_is_refused() -> None:
    serializer = SafeSerializer(pickle_key=KEY)
    data = serializer.dumps(Opaque(make_adder(1)))
    mismatch = (
        "stored pickle's signature does not match: it was tampered with or signed with another "
        "key; refusing to unpickle it"
    )
    for position in (len(data) - 1, len(header("pickle")), len(header("pickle")) + 40):
        tampered = bytearray(data)
        tampered[position] ^= 0x01
        with pytest.raises(UntrustedPayloadError) as info:
            serializer.loads(bytes(tampered))
        assert str(info.value) == mismatch


def test_pickle_signed_with_another_key_is_refused() -> None:
    data = SafeSerializer(pickle_key=b"another secret of 32 bytes, yes!").dumps(Opaque(abs))
    with pytest.raises(UntrustedPayloadError, match="signed with another key"):
        SafeSerializer(pickle_key=KEY).loads(data)


def test_unsigned_and_short_pickles_are_refused() -> None:
    serializer = SafeSerializer(pickle_key=KEY)
    with pytest.raises(UntrustedPayloadError) as info:
        serializer.loads(header("pickle") + pickle.dumps(1)[:10])
    assert str(info.value) == (
        "stored pickle carries no signature (it is shorter than an HMAC-SHA256 and a pickle); "
        "refusing to unpickle it"
    )
    with pytest.raises(UntrustedPayloadError, match="signature does not match"):
        serializer.loads(header("pickle") + pickle.dumps(list(range(100))))


def test_malicious_pickle_is_never_executed(tmp_path: pathlib.Path) -> None:
    marker = tmp_path / "pwned"
    malicious = pickle.dumps(Evil(marker))
    payloads = [
        header("pickle") + malicious,
        header("pickle") + b"\x00" * 32 + malicious,
        SafeSerializer(pickle_key=b"the attacker's own key, 32 bytes").dumps(Evil(marker)),
    ]
    for serializer in (SafeSerializer(), SafeSerializer(pickle_key=KEY)):
        for payload in payloads:
            with pytest.raises(UntrustedPayloadError):
                serializer.loads(payload)
            assert not marker.exists()
    # The control: the same payload, signed with the reader's key, does run.
    SafeSerializer(pickle_key=KEY).loads(SafeSerializer(pickle_key=KEY).dumps(Evil(marker)))
    assert marker.exists()
