"""Fan-out nodes: run an inner knot once per item, each run its own knot execution.

Every item leaves its own lineage record with knot id ``<map id>[<label>]`` (the
index, or the key for DictMap). Items run with bounded concurrency, so a map of any
size holds only ``max_concurrency`` items in flight.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pirn_like._errors import MapItemsFailedError, WiringError
from pirn_like._ids import ContentHash
from pirn_like.core._config import KnotConfig
from pirn_like.core._hashing import content_hash
from pirn_like.core._identity import callable_identity
from pirn_like.core._knot import FunctionKnot, Knot, ProcessSpec, Registrar
from pirn_like.core._results import Err, Ok, Result
from pirn_like.core._runtime import ItemTarget, KnotRuntime
from pirn_like.nodes._checks import require_knot

__all__ = ["DictMap", "Map", "ZipMap"]

_DEFAULT_CONCURRENCY = 512


def _item_target(node: str, each: object) -> ItemTarget:
    if isinstance(each, type) and issubclass(each, FunctionKnot):
        fn = each.fn
        spec = each._spec
        assert spec is not None
    elif isinstance(each, type):
        raise WiringError(
            f"{node}: each={each.__qualname__} is a Knot class; pass an @knot function "
            "or a plain function (sync or async) to run per item"
        )
    elif callable(each):
        fn = each
        qual = f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"
        spec = ProcessSpec.of(fn, owner=qual, skip_self=False)
    else:
        raise WiringError(f"{node}: each must be an @knot function or a callable, got {each!r}")
    knot_class = f"{fn.__module__}.{fn.__qualname__}"
    return ItemTarget(target=fn, spec=spec, knot_class=knot_class, identity=callable_identity(fn))


def _shared_hashes(shared: Mapping[str, object]) -> dict[str, ContentHash]:
    return {name: content_hash(value) for name, value in shared.items()}


class _FanOut(Knot):
    """What Map, ZipMap and DictMap share: the inner target, concurrency, collection."""

    _execution = "custom"
    each: ItemTarget
    item_concurrency: int

    def _setup(self, node: str, each: object, max_concurrency: int | None) -> None:
        self.each = _item_target(node, each)
        self.item_concurrency = max_concurrency or _DEFAULT_CONCURRENCY
        if self.item_concurrency < 1:
            raise WiringError(f"{node}: max_concurrency must be at least 1")

    def _infer_bind(self, node: str, taken: set[str | None]) -> str:
        """The one input of ``each`` not given otherwise: it receives the items."""
        free = [n for n in self.each.spec.names if n not in taken]
        if len(free) != 1:
            raise WiringError(
                f"{node}: cannot tell which input of {self.each.spec.qualname} takes the "
                f"items (candidates: {free}); pass bind='<name>'"
            )
        return free[0]

    def _check_binding(self, node: str, bound: set[str], shared: set[str]) -> None:
        spec = self.each.spec
        given = bound | shared
        if not spec.accepts_any:
            unknown = sorted(given - set(spec.names))
            if unknown:
                raise WiringError(
                    f"{node}: {spec.qualname} has no input {', '.join(map(repr, unknown))}; "
                    f"declared: {list(spec.names)}"
                )
        missing = sorted(spec.required - given)
        if missing:
            raise WiringError(
                f"{node}: {spec.qualname} needs {', '.join(map(repr, missing))}; bind it to "
                "the items or pass it to the map as a knot or constant"
            )

    def identity_settings(self) -> dict[str, object]:
        return {**super().identity_settings(), "each": self.each.identity}

    async def process(self, **inputs: Any) -> Any:  # pragma: no cover - custom execution
        raise RuntimeError("fan-out knots are executed by the engine")

    async def _run(
        self,
        runtime: KnotRuntime,
        items: Sequence[tuple[str, Mapping[str, object]]],
        shared: Mapping[str, object],
    ) -> list[Any]:
        results = await runtime.run_items(
            self,
            self.each,
            items,
            shared=shared,
            shared_hashes=_shared_hashes(shared),
            limit=self.item_concurrency,
        )
        return _values(self.id, [label for label, _ in items], results)


def _values(owner: str, labels: Sequence[str], results: Sequence[Result[Any]]) -> list[Any]:
    failed = [(label, r) for label, r in zip(labels, results, strict=True) if type(r) is not Ok]
    if failed:
        shown = ", ".join(f"{owner}[{label}] {_describe(r)}" for label, r in failed[:5])
        more = f" and {len(failed) - 5} more" if len(failed) > 5 else ""
        raise MapItemsFailedError(
            f"{len(failed)} of {len(results)} items of {owner!r} did not succeed: {shown}{more}"
        )
    return [r.value for r in results]  # type: ignore[union-attr]


def _describe(result: Result[Any]) -> str:
    if isinstance(result, Err):
        return f"err ({result.record.type.rsplit('.', 1)[-1]}: {result.record.message})"
    return result.outcome.value


def _as_list(node: str, value: object) -> list[Any]:
    if isinstance(value, str | bytes | Mapping) or not hasattr(value, "__iter__"):
        raise TypeError(f"{node}: expected a list of items, got {type(value).__name__}")
    return list(value)  # type: ignore[call-overload]


class Map(_FanOut):
    """Run ``each`` once per element of ``over``; outputs the list of results.

    ``bind`` names the input of ``each`` that receives the element (default: its only
    input not given as a keyword). Extra keywords (knots or constants) are passed to
    every item. Any item failing fails the map, naming the items.
    """

    def __init__(
        self,
        *,
        over: Any,
        each: Callable[..., Any],
        bind: str | None = None,
        max_concurrency: int | None = None,
        _config: KnotConfig | None = None,
        tapestry: Registrar | None = None,
        **inputs: Any,
    ) -> None:
        node = f"Map {getattr(_config, 'id', '?')!r}"
        self._setup(node, each, max_concurrency)
        self.bind = bind or self._infer_bind(node, taken=set(inputs))
        self._check_binding(node, {self.bind}, set(inputs))
        super().__init__(
            _config=_config, tapestry=tapestry, over=require_knot(node, "over", over), **inputs
        )

    def identity_settings(self) -> dict[str, object]:
        return {**super().identity_settings(), "bind": self.bind}

    async def _execute(self, kwargs: dict[str, Any], runtime: KnotRuntime) -> list[Any]:
        items = _as_list(f"map {self.id!r}", kwargs.pop("over"))
        bind = self.bind
        return await self._run(runtime, [(str(i), {bind: v}) for i, v in enumerate(items)], kwargs)


class ZipMap(_FanOut):
    """Run ``each`` over several lists in lock-step: ``over={"a": k1, "b": k2}`` calls
    ``each(a=k1[i], b=k2[i])``. Lists of different lengths fail the knot."""

    def __init__(
        self,
        *,
        over: Mapping[str, Any],
        each: Callable[..., Any],
        max_concurrency: int | None = None,
        _config: KnotConfig | None = None,
        tapestry: Registrar | None = None,
        **inputs: Any,
    ) -> None:
        node = f"ZipMap {getattr(_config, 'id', '?')!r}"
        self._setup(node, each, max_concurrency)
        if not over:
            raise WiringError(f"{node}: over must map at least one input name to a knot")
        zipped = {name: require_knot(node, name, k) for name, k in over.items()}
        clash = sorted(set(zipped) & set(inputs))
        if clash:
            raise WiringError(f"{node}: {clash} given both in over= and as keywords")
        self.zipped = tuple(zipped)
        self._check_binding(node, set(zipped), set(inputs))
        super().__init__(_config=_config, tapestry=tapestry, **zipped, **inputs)

    async def _execute(self, kwargs: dict[str, Any], runtime: KnotRuntime) -> list[Any]:
        columns = {n: _as_list(f"zipmap {self.id!r}", kwargs.pop(n)) for n in self.zipped}
        lengths = {n: len(c) for n, c in columns.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"zipmap {self.id!r}: inputs have different lengths {lengths}")
        count = next(iter(lengths.values()))
        items = [(str(i), {n: c[i] for n, c in columns.items()}) for i in range(count)]
        return await self._run(runtime, items, kwargs)


class DictMap(_FanOut):
    """Run ``each`` once per value of the dict ``over``; outputs a dict with the same
    keys. ``bind`` takes the value; ``key_bind`` (optional) takes the key."""

    def __init__(
        self,
        *,
        over: Any,
        each: Callable[..., Any],
        bind: str | None = None,
        key_bind: str | None = None,
        max_concurrency: int | None = None,
        _config: KnotConfig | None = None,
        tapestry: Registrar | None = None,
        **inputs: Any,
    ) -> None:
        node = f"DictMap {getattr(_config, 'id', '?')!r}"
        self._setup(node, each, max_concurrency)
        self.bind = bind or self._infer_bind(node, taken={*inputs, key_bind})
        self.key_bind = key_bind
        bound = {self.bind} | ({key_bind} if key_bind else set())
        self._check_binding(node, bound, set(inputs))
        super().__init__(
            _config=_config, tapestry=tapestry, over=require_knot(node, "over", over), **inputs
        )

    def identity_settings(self) -> dict[str, object]:
        return {**super().identity_settings(), "bind": self.bind, "key_bind": self.key_bind}

    async def _execute(self, kwargs: dict[str, Any], runtime: KnotRuntime) -> dict[Any, Any]:
        mapping = kwargs.pop("over")
        if not isinstance(mapping, Mapping):
            raise TypeError(f"dictmap {self.id!r}: expected a dict, got {type(mapping).__name__}")
        keys = list(mapping)
        bind, key_bind = self.bind, self.key_bind
        items = [
            (str(k), {bind: mapping[k], key_bind: k} if key_bind else {bind: mapping[k]})
            for k in keys
        ]
        values = await self._run(runtime, items, kwargs)
        return dict(zip(keys, values, strict=True))
