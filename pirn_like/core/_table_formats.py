"""numpy, pyarrow and pandas values in their own formats (``.npy``, Arrow IPC), never pickle.

The libraries are imported on first use only: importing this module must stay light.
"""

from __future__ import annotations

import io
import json
import struct
from typing import Any

from pirn_like._errors import MissingExtraError, SerializationError

__all__ = ["ArrowFormat", "NpyFormat", "PandasFormat"]

_length = struct.Struct(">Q")
"""Prefix of the values stream in a pandas payload, so the labels stream follows it."""


def _root_module(kind: type) -> str:
    return kind.__module__.partition(".")[0]


def _numpy() -> Any:
    try:
        import numpy
    except ImportError as error:
        raise MissingExtraError("storing numpy values", "numpy", "numpy") from error
    return numpy


def _pyarrow() -> Any:
    try:
        import pyarrow  # pyright: ignore[reportMissingImports]
    except ImportError as error:
        raise MissingExtraError("storing pandas and pyarrow values", "pandas", "pyarrow") from error
    return pyarrow


def _pandas() -> Any:
    try:
        import pandas  # pyright: ignore[reportMissingImports]
    except ImportError as error:
        raise MissingExtraError("storing pandas values", "pandas", "pandas") from error
    return pandas


class NpyFormat:
    """numpy arrays and scalars in the ``.npy`` format, without pickle."""

    name = "npy"

    def accepts(self, value: Any) -> bool:
        kind = type(value)
        if _root_module(kind) != "numpy":
            return False
        np = _numpy()
        return kind is np.ndarray or isinstance(value, np.generic)

    def dumps(self, value: Any) -> bytes:
        np = _numpy()
        array = np.asarray(value)
        if array.dtype.hasobject:
            raise SerializationError(
                f"numpy arrays of dtype {array.dtype} hold Python objects, which only pickle stores"
            )
        buffer = io.BytesIO()
        buffer.write(b"a" if type(value) is np.ndarray else b"s")
        np.save(buffer, array, allow_pickle=False)
        return buffer.getvalue()

    def loads(self, data: bytes) -> object:
        array = _numpy().load(io.BytesIO(data[1:]), allow_pickle=False)
        return array if data[:1] == b"a" else array[()]


def _arrow_stream(table: Any) -> bytes:
    pa = _pyarrow()
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write(table)
    return sink.getvalue().to_pybytes()


def _arrow_reader(data: bytes) -> Any:
    pa = _pyarrow()
    return pa.ipc.open_stream(pa.py_buffer(data))


class ArrowFormat:
    """pyarrow Tables and RecordBatches as an Arrow IPC stream."""

    name = "arrow"

    def accepts(self, value: Any) -> bool:
        kind = type(value)
        if _root_module(kind) != "pyarrow":
            return False
        pa = _pyarrow()
        return kind is pa.Table or kind is pa.RecordBatch

    def dumps(self, value: Any) -> bytes:
        kind = b"t" if type(value) is _pyarrow().Table else b"b"
        return kind + _arrow_stream(value)

    def loads(self, data: bytes) -> object:
        reader = _arrow_reader(data[1:])
        return reader.read_all() if data[:1] == b"t" else reader.read_next_batch()


_PANDAS_FIXES = b"pirn_like"
"""Schema metadata key: what pyarrow's pandas conversion does not restore by itself."""


def _frame_to_table(frame: Any) -> Any:
    """An Arrow table of ``frame`` with positional column names (labels are stored apart)."""
    pa, pd = _pyarrow(), _pandas()
    is_object = pd.api.types.is_object_dtype
    index = frame.index
    levels = [index.get_level_values(i) for i in range(index.nlevels)]
    fixes = {
        # pandas 3 reads Arrow strings back as str dtype, even for object columns.
        "object": [i for i, dtype in enumerate(frame.dtypes) if is_object(dtype)],
        "index_object": [i for i, level in enumerate(levels) if is_object(level.dtype)],
        "freq": index.freqstr
        if isinstance(index, pd.DatetimeIndex | pd.TimedeltaIndex) and index.freq is not None
        else None,
    }
    positional = frame.set_axis([str(i) for i in range(frame.shape[1])], axis=1)
    try:
        table = pa.Table.from_pandas(positional, preserve_index=None)
    except (pa.ArrowException, ValueError, TypeError) as error:
        raise SerializationError(f"pyarrow cannot convert it: {error}") from error
    metadata = {**(table.schema.metadata or {}), _PANDAS_FIXES: json.dumps(fixes).encode()}
    # Not replace_schema_metadata: it drops the row count of a table without columns.
    return pa.Table.from_batches(table.to_batches(), schema=table.schema.with_metadata(metadata))


def _table_to_frame(table: Any) -> Any:
    pd = _pandas()
    frame = table.to_pandas()
    fixes = json.loads(table.schema.metadata[_PANDAS_FIXES])
    for i in fixes["object"]:
        frame.isetitem(i, frame.iloc[:, i].astype(object))
    index = frame.index
    if fixes["index_object"]:
        if isinstance(index, pd.MultiIndex):
            levels = [index.levels[i].astype(object) for i in fixes["index_object"]]
            index = index.set_levels(levels, level=fixes["index_object"])
        else:
            index = index.astype(object)
    if fixes["freq"] is not None:
        index = type(index)(index, freq=fixes["freq"])
    frame.index = index
    return frame


class PandasFormat:
    """pandas DataFrames and Series through pyarrow: values, then column labels."""

    name = "pandas"

    def accepts(self, value: Any) -> bool:
        kind = type(value)
        if _root_module(kind) != "pandas":
            return False
        pd = _pandas()
        return kind is pd.DataFrame or kind is pd.Series

    def dumps(self, value: Any) -> bytes:
        pd = _pandas()
        is_series = type(value) is pd.Series
        frame = value.to_frame(name=value.name) if is_series else value
        values = _arrow_stream(_frame_to_table(frame))
        labels = _arrow_stream(_frame_to_table(pd.DataFrame(index=frame.columns)))
        return (b"s" if is_series else b"f") + _length.pack(len(values)) + values + labels

    def loads(self, data: bytes) -> object:
        (size,) = _length.unpack_from(data, 1)
        start = 1 + _length.size
        frame = _table_to_frame(_arrow_reader(data[start : start + size]).read_all())
        frame.columns = _table_to_frame(_arrow_reader(data[start + size :]).read_all()).index
        return frame.iloc[:, 0] if data[:1] == b"s" else frame
