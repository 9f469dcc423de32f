"""The parameter types a pipeline may name: builtins and a few stdlib value types.

Only this table is consulted, so a ``type_`` can never import anything.
"""

from __future__ import annotations

import datetime
import decimal
from typing import Any

__all__ = ["TYPE_NAMES", "type_name"]

TYPE_NAMES: dict[str, Any] = {
    "object": object,
    "any": object,
    "int": int,
    "float": float,
    "str": str,
    "bool": bool,
    "bytes": bytes,
    "list": list,
    "dict": dict,
    "tuple": tuple,
    "set": set,
    "frozenset": frozenset,
    "decimal": decimal.Decimal,
    "date": datetime.date,
    "datetime": datetime.datetime,
    "time": datetime.time,
    "timedelta": datetime.timedelta,
}


def type_name(tp: Any) -> str | None:
    """The table's name for ``tp``, or None when the format cannot name it."""
    for name, candidate in TYPE_NAMES.items():
        if candidate is tp and name != "any":
            return name
    return None
