"""Codecs: how values of types the hasher does not know reduce to plain data.

A codec has a stable ``name`` and a ``reduce`` function that returns plain, canonicalizable data
(None, bool, int, float, complex, str, bytes, list, tuple, dict, set, ... or values that have
codecs themselves). The hasher encodes a codec-handled value as the codec's name followed by the
canonical encoding of ``reduce(value)``, so two types reducing to the same data still hash
differently unless their codecs share a name; the name is the codec's identity.

Lookup walks the value's MRO, so a codec registered for a class also serves its subclasses
(under that codec's name); results are cached per exact type. Types that
``pirn_like.core._hashing`` encodes natively (the builtins, datetime, Decimal, UUID) cannot take
a codec.

Codecs for numpy, pandas and pyarrow values are built in but installed lazily, the first time a
value whose class comes from one of those packages is hashed, so importing this module imports
none of them. They are consulted after the user's registry, so a user codec overrides them. Their
reductions: arrays become dtype, shape and little-endian C-order bytes (every NaN made the
canonical NaN; object, structured and long-double arrays element by element); pandas objects
become column names, index, dtypes and per-column values; pyarrow tables become schema (names,
types, nullability; metadata is ignored as it embeds library versions) and per-column values
independent of chunking.
"""

from __future__ import annotations

import datetime as _dt
import decimal
import uuid
from typing import TYPE_CHECKING, Any, Protocol, cast

if TYPE_CHECKING:
    from collections.abc import Callable

    from numpy.typing import NDArray

__all__ = ["Codec", "CodecRegistry", "default_codecs", "register_codec"]


class _Encoded:
    """An encoding a built-in codec already wrote in the hasher's canonical form (``head``
    then ``body``): the hasher takes it as it is. Only for encodings equal, byte for byte,
    to what the hasher would write for the plain value (a list of a million strings,
    built in bulk)."""

    __slots__ = ("body", "head")

    def __init__(self, head: bytes, body: bytes | memoryview) -> None:
        self.head = head
        self.body = body


_NATIVE_TYPES: frozenset[type] = frozenset(
    {
        type(None),
        bool,
        int,
        float,
        complex,
        str,
        bytes,
        bytearray,
        _Encoded,
        list,
        tuple,
        dict,
        set,
        frozenset,
        _dt.datetime,
        _dt.date,
        _dt.time,
        _dt.timedelta,
        decimal.Decimal,
        uuid.UUID,
    }
)
"""Types the hasher encodes itself, before any codec is consulted."""


def type_name(type_: type) -> str:
    """The qualified name ``module.qualname`` of a type, as used in encodings and messages."""
    return f"{type_.__module__}.{type_.__qualname__}"


class Codec(Protocol):
    """Reduces values of one type to plain data that identifies them."""

    name: str
    """Stable tag written into the encoding, e.g. ``"numpy.ndarray"``."""

    def reduce(self, value: Any) -> object:
        """Plain, canonicalizable data that identifies ``value``."""
        ...


class _FunctionCodec:
    __slots__ = ("_fn", "name")

    def __init__(self, name: str, fn: Callable[[Any], object]) -> None:
        self.name = name
        self._fn = fn

    def reduce(self, value: Any) -> object:
        return self._fn(value)


class CodecRegistry:
    """A mapping from types to codecs, looked up along the MRO."""

    __slots__ = ("_cache", "_codecs")

    def __init__(self) -> None:
        self._codecs: dict[type, Codec] = {}
        self._cache: dict[type, Codec | None] = {}

    def register(
        self,
        type_: type,
        reduce: Callable[[Any], object] | Codec,
        *,
        name: str | None = None,
    ) -> None:
        """Hash values of ``type_`` (and its subclasses) by what ``reduce`` returns.

        ``reduce`` is a function or a Codec. ``name`` defaults to the Codec's own name, or for a
        function to ``module.qualname`` of ``type_``; when given, it replaces a Codec's name.
        """
        if not isinstance(type_, type):  # pyright: ignore[reportUnnecessaryIsInstance]
            raise TypeError(f"register needs a class, got {type_!r}")
        if type_ in _NATIVE_TYPES:
            raise ValueError(
                f"{type_name(type_)} is encoded natively by the hasher and cannot take a codec"
            )
        codec = _as_codec(type_, reduce, name)
        if not codec.name:
            raise ValueError(f"the codec for {type_name(type_)} needs a non-empty name")
        self._codecs[type_] = codec
        self._cache.clear()

    def lookup(self, type_: type) -> Codec | None:
        """The codec for ``type_`` or its nearest registered base class, or None."""
        try:
            return self._cache[type_]
        except KeyError:
            pass
        codec = next((self._codecs[c] for c in type_.__mro__ if c in self._codecs), None)
        self._cache[type_] = codec
        return codec

    def copy(self) -> CodecRegistry:
        """An independent registry holding the same codecs."""
        other = CodecRegistry()
        other._codecs.update(self._codecs)
        return other


def _as_codec(type_: type, reduce: Callable[[Any], object] | Codec, name: str | None) -> Codec:
    codec_reduce = getattr(reduce, "reduce", None)
    if callable(codec_reduce) and isinstance(getattr(reduce, "name", None), str):
        codec = cast("Codec", reduce)
        return codec if name is None else _FunctionCodec(name, codec.reduce)
    if callable(reduce):
        return _FunctionCodec(type_name(type_) if name is None else name, reduce)
    raise TypeError(f"reduce must be a function or a Codec, got {reduce!r}")


default_codecs = CodecRegistry()
"""The registry content hashing uses unless given another."""


def register_codec(
    type_: type,
    reduce: Callable[[Any], object] | Codec,
    *,
    name: str | None = None,
) -> None:
    """Register a codec on :data:`default_codecs`; see :meth:`CodecRegistry.register`."""
    default_codecs.register(type_, reduce, name=name)


class _LazyCodecs(CodecRegistry):
    """The built-in numpy/pandas/pyarrow codecs, each package's installed on first sight.

    A type is matched to a package by the modules of its whole MRO, so subclasses defined
    elsewhere are covered too.
    """

    __slots__ = ("_installed",)

    def __init__(self) -> None:
        super().__init__()
        self._installed: set[str] = set()

    def lookup(self, type_: type) -> Codec | None:
        if type_ not in self._cache:
            roots = {c.__module__.partition(".")[0] for c in type_.__mro__}
            for root, install in _INSTALLERS.items():
                if root in roots and root not in self._installed:
                    install(self)
                    self._installed.add(root)
        return super().lookup(type_)


def _install_numpy(registry: CodecRegistry) -> None:
    import numpy as np

    registry.register(np.ndarray, _ndarray_plain, name="numpy.ndarray")
    registry.register(np.ma.MaskedArray, _masked_plain, name="numpy.ma.MaskedArray")
    registry.register(np.generic, lambda x: _ndarray_plain(np.asarray(x)), name="numpy.generic")
    registry.register(np.dtype, _dtype_key, name="numpy.dtype")


def _dtype_key(dtype: Any) -> object:
    # Little-endian throughout, so the same values hash the same on any machine.
    little = dtype.newbyteorder("<")
    return little.descr if little.fields is not None else little.str


def _ndarray_plain(array: NDArray[Any]) -> tuple[object, tuple[int, ...], object]:
    import numpy as np

    dtype = array.dtype
    shape = tuple(int(n) for n in array.shape)
    if dtype.hasobject or dtype.fields is not None:
        # Object slots hold addresses and structured dtypes may hold padding: go by element.
        return _dtype_key(dtype), shape, array.reshape(-1).tolist()
    if dtype.kind in "fc" and dtype.itemsize > (16 if dtype.kind == "c" else 8):
        # Long doubles carry undefined padding bytes; their str() is the exact shortest repr.
        return _dtype_key(dtype), shape, [str(x) for x in array.reshape(-1)]
    little = dtype.newbyteorder("<")
    flat = np.ascontiguousarray(array, dtype=little).reshape(-1)
    if dtype.kind in "fc":
        parts = flat.view(f"<f{little.itemsize // (2 if dtype.kind == 'c' else 1)}")
        nan = np.isnan(parts)
        if nan.any():
            parts = parts.copy()
            parts[nan] = np.nan
        flat = parts
    return little.str, shape, flat.tobytes()


def _masked_plain(array: Any) -> object:
    import numpy as np

    return _ndarray_plain(np.ma.getdata(array)), _ndarray_plain(np.ma.getmaskarray(array))


# pandas and pyarrow are optional extras: type checking must pass without them installed.


def _install_pandas(registry: CodecRegistry) -> None:
    import pandas as pd  # pyright: ignore[reportMissingImports]
    from pandas.api.extensions import ExtensionArray  # pyright: ignore[reportMissingImports]

    registry.register(pd.DataFrame, _dataframe_plain, name="pandas.DataFrame")
    registry.register(pd.Series, _series_plain, name="pandas.Series")
    registry.register(pd.Index, _index_plain, name="pandas.Index")
    registry.register(ExtensionArray, _extension_array_plain, name="pandas.ExtensionArray")
    registry.register(pd.Timestamp, lambda t: t.isoformat(), name="pandas.Timestamp")
    registry.register(pd.Timedelta, lambda t: t.isoformat(), name="pandas.Timedelta")
    registry.register(pd.Period, lambda p: (p.freqstr, p.ordinal), name="pandas.Period")
    registry.register(pd.Interval, lambda i: (i.left, i.right, i.closed), name="pandas.Interval")
    registry.register(type(pd.NaT), lambda _: None, name="pandas.NaT")
    registry.register(type(pd.NA), lambda _: None, name="pandas.NA")


def _pandas_dtype_key(dtype: Any) -> object:
    import numpy as np
    import pandas as pd  # pyright: ignore[reportMissingImports]

    if isinstance(dtype, np.dtype):
        return _dtype_key(dtype)
    if isinstance(dtype, pd.CategoricalDtype):
        return "category", _index_plain(dtype.categories), bool(dtype.ordered)
    return str(dtype)


def _pandas_values(values: Any) -> object:
    """The values of an ndarray or a pandas ExtensionArray other than NumpyExtensionArray."""
    import numpy as np
    import pandas as pd  # pyright: ignore[reportMissingImports]

    if isinstance(values.dtype, np.dtype):
        return _ndarray_plain(np.asarray(values))
    if isinstance(values, pd.Categorical):
        return _ndarray_plain(np.asarray(values.codes))
    arrays = pd.arrays
    if isinstance(values, arrays.DatetimeArray | arrays.TimedeltaArray | arrays.PeriodArray):
        # Integer ticks; the unit, zone or frequency is in the dtype key.
        return _ndarray_plain(values.asi8)
    if isinstance(values, arrays.IntegerArray | arrays.FloatingArray | arrays.BooleanArray):
        # Slots under the mask hold undefined data: record the mask, then zero them.
        filled = values.to_numpy(dtype=values.dtype.numpy_dtype, na_value=0)
        return _ndarray_plain(np.asarray(values.isna())), _ndarray_plain(filled)
    return values.tolist()


def _extension_array_plain(values: Any) -> object:
    import pandas as pd  # pyright: ignore[reportMissingImports]

    if isinstance(values, pd.arrays.NumpyExtensionArray):
        # Its dtype is a wrapper; the ndarray inside has the real one.
        values = values.to_numpy()
    return _pandas_dtype_key(values.dtype), _pandas_values(values)


def _index_plain(index: Any) -> object:
    import pandas as pd  # pyright: ignore[reportMissingImports]

    if isinstance(index, pd.RangeIndex):
        return "range", index.name, index.start, index.stop, index.step
    if isinstance(index, pd.MultiIndex):
        levels = [_index_plain(index.get_level_values(i)) for i in range(index.nlevels)]
        return "multi", list(index.names), levels
    return "index", index.name, _extension_array_plain(index.array)


def _series_plain(series: Any) -> object:
    return series.name, _index_plain(series.index), _extension_array_plain(series.array)


def _dataframe_plain(frame: Any) -> object:
    # Positional access keeps duplicate column names apart.
    columns = [_extension_array_plain(frame.iloc[:, i].array) for i in range(frame.shape[1])]
    return _index_plain(frame.columns), _index_plain(frame.index), columns


def _install_pyarrow(registry: CodecRegistry) -> None:
    import pyarrow as pa  # pyright: ignore[reportMissingImports]

    registry.register(pa.Table, _arrow_table_plain, name="pyarrow.Table")
    registry.register(pa.RecordBatch, _arrow_table_plain, name="pyarrow.RecordBatch")
    registry.register(pa.Array, _arrow_array_plain, name="pyarrow.Array")
    registry.register(pa.ChunkedArray, _arrow_array_plain, name="pyarrow.ChunkedArray")


def _arrow_table_plain(table: Any) -> object:
    schema = [(field.name, str(field.type), field.nullable) for field in table.schema]
    return schema, [_arrow_values(column) for column in table.columns]


def _arrow_array_plain(array: Any) -> object:
    return str(array.type), _arrow_values(array)


def _arrow_values(array: Any) -> object:
    """The values of a pyarrow Array or ChunkedArray, whatever its chunking."""
    import numpy as np
    import pyarrow as pa  # pyright: ignore[reportMissingImports]

    types = pa.types
    kind = array.type
    if types.is_timestamp(kind) or types.is_date(kind) or types.is_time(kind):
        array = array.cast(pa.int32() if kind.bit_width == 32 else pa.int64())
    elif types.is_duration(kind):
        array = array.cast(pa.int64())
    kind = array.type
    if types.is_string(kind) or types.is_large_string(kind):
        return _arrow_varlength_list(array, pa.large_string(), b"s")
    if types.is_binary(kind) or types.is_large_binary(kind):
        return _arrow_varlength_list(array, pa.large_binary(), b"y")
    if not (types.is_integer(kind) or types.is_floating(kind) or types.is_boolean(kind)):
        return array.to_pylist()
    valid = None
    if array.null_count:
        # Slots under a null hold undefined data: record validity, then zero them.
        valid = _ndarray_plain(np.asarray(array.is_valid().to_numpy(zero_copy_only=False)))
        array = array.fill_null(False if types.is_boolean(kind) else 0)
    return valid, _ndarray_plain(np.asarray(array.to_numpy(zero_copy_only=False)))


def _arrow_varlength_list(array: Any, large: Any, tag: bytes) -> _Encoded:
    """The canonical encoding of ``array.to_pylist()`` for a string or binary array (a list
    of ``tag`` + 8-byte length + bytes per value, ``N`` per null), built by Arrow kernels.

    Equal, byte for byte, to encoding the Python list (tests/test_hashing.py checks), at a
    fraction of the cost: no Python object per value.
    """
    import numpy as np
    import pyarrow as pa  # pyright: ignore[reportMissingImports]
    import pyarrow.compute  # pyright: ignore[reportMissingImports]

    pc: Any = pyarrow.compute  # its kernels are generated at import: not in the stubs
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks() if array.num_chunks else pa.array([], large)
    values = array.cast(large).cast(pa.large_binary())
    n = len(values)
    lengths = pc.binary_length(values).fill_null(0).to_numpy(zero_copy_only=False)
    heads = np.empty((n, 9), dtype=np.uint8)
    heads[:, 0] = tag[0]
    heads[:, 1:] = lengths.astype(">u8").view(np.uint8).reshape(-1, 8)
    head_array = pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(9), n, [None, pa.py_buffer(heads)]
    ).cast(pa.large_binary())
    # Each value joined to its header; a null stays null, then becomes the None tag.
    joined = pc.binary_join_element_wise(head_array, values, pa.scalar(b"", pa.large_binary()))
    if values.null_count:
        joined = joined.fill_null(b"N")
    body: bytes | memoryview = b""
    if n:
        _, offsets_buffer, data_buffer = joined.buffers()
        offsets = np.frombuffer(offsets_buffer, np.int64, count=n + 1, offset=joined.offset * 8)
        body = memoryview(data_buffer)[int(offsets[0]) : int(offsets[-1])]
    return _Encoded(b"l" + n.to_bytes(8, "big"), body)


_INSTALLERS: dict[str, Callable[[CodecRegistry], None]] = {
    "numpy": _install_numpy,
    "pandas": _install_pandas,
    "pyarrow": _install_pyarrow,
}

_builtin_codecs = _LazyCodecs()
"""Consulted by the hasher after the user's registry."""
