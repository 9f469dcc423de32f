"""Knots: the unit of work, built from ``Knot`` subclasses or ``@knot`` functions.

A knot is built with keyword arguments. A value that is a knot (or a ``Ref`` to one)
makes that knot a *parent*; anything else is a *constant*. Framework settings go in
``_config=KnotConfig(...)``. Building a knot inside ``with Tapestry():`` registers it.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Generator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from pirn_like._errors import KnotDefinitionError, WiringError
from pirn_like._ids import ContentHash, KnotId
from pirn_like.core._config import KnotConfig
from pirn_like.core._identity import code_hash, config_hash

__all__ = [
    "FunctionKnot",
    "Knot",
    "Optional",
    "Parameter",
    "ProcessSpec",
    "Ref",
    "Registrar",
    "knot",
    "registering_into",
]

_ID_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*\Z")
_MISSING: Any = inspect.Parameter.empty


class Registrar(Protocol):
    """Where knots built in a ``with`` block are registered (a Tapestry)."""

    def register(self, knot: Knot) -> Knot: ...


_current_registrar: ContextVar[Registrar | None] = ContextVar(
    "pirn_like_current_registrar", default=None
)


@contextmanager
def registering_into(registrar: Registrar) -> Generator[None]:
    """Register every knot built inside the block into ``registrar``."""
    token = _current_registrar.set(registrar)
    try:
        yield
    finally:
        _current_registrar.reset(token)


@dataclass(frozen=True, slots=True)
class Ref:
    """A reference to a knot by id, resolved when the tapestry runs.

    Use it to wire to a knot defined later or registered by someone else.
    """

    knot_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ProcessSpec:
    """What a knot's ``process`` (or ``@knot`` function) accepts, read from its signature."""

    qualname: str
    names: tuple[str, ...]
    required: frozenset[str]
    accepts_any: bool
    """``**kwargs`` under a name other than ``_``: any input name is accepted."""
    is_async: bool

    @classmethod
    def of(cls, fn: Callable[..., Any], *, owner: str, skip_self: bool) -> ProcessSpec:
        sig = inspect.signature(fn)
        params = list(sig.parameters.values())
        if skip_self:
            params = params[1:]
        names: list[str] = []
        required: set[str] = set()
        var_kw: str | None = None
        for p in params:
            if p.kind is p.VAR_KEYWORD:
                var_kw = p.name
            elif p.kind in (p.POSITIONAL_ONLY, p.VAR_POSITIONAL):
                raise KnotDefinitionError(
                    f"{owner}: parameter {p.name!r} is positional-only or *args; knot inputs "
                    "are passed by keyword, so make it a regular or keyword-only parameter"
                )
            else:
                names.append(p.name)
                if p.default is _MISSING:
                    required.add(p.name)
        return cls(
            qualname=owner,
            names=tuple(names),
            required=frozenset(required),
            accepts_any=var_kw not in (None, "_"),
            is_async=inspect.iscoroutinefunction(fn),
        )

    def check_inputs(self, knot_id: str, given: Mapping[str, object]) -> None:
        if not self.accepts_any:
            unknown = sorted(set(given) - set(self.names))
            if unknown:
                raise WiringError(
                    f"knot {knot_id!r} ({self.qualname}) has no input "
                    f"{', '.join(map(repr, unknown))}; declared: {list(self.names)}"
                )
        missing = sorted(self.required - set(given))
        if missing:
            raise WiringError(
                f"knot {knot_id!r} ({self.qualname}) is missing required input "
                f"{', '.join(map(repr, missing))}: pass it as a knot or a constant"
            )


def _qualified(obj: Any) -> str:
    return f"{obj.__module__}.{obj.__qualname__}"


def check_knot_id(knot_id: object) -> KnotId:
    """Return ``knot_id`` if it is a valid id, else raise a WiringError saying why."""
    if not isinstance(knot_id, str) or not _ID_PATTERN.match(knot_id):
        raise WiringError(
            f"invalid knot id {knot_id!r}: ids are non-empty and use letters, digits, "
            "'_', '.' and '-' (not starting with '.' or '-')"
        )
    return KnotId(knot_id)


class Knot:
    """Base class of every knot.

    Subclass it and write ``async def process(self, <inputs>, **_) -> T`` (a plain
    ``def`` runs in a worker thread). Build an instance with keyword arguments: knot
    values become parents, other values constants, and ``_config=KnotConfig(id=...)``
    gives the id. ``tapestry=`` registers the knot into a specific tapestry.
    """

    _spec: ClassVar[ProcessSpec | None] = None
    _execution: ClassVar[str] = "process"
    """``process``: the engine calls ``process``; ``custom``: the knot's ``_execute``."""

    id: KnotId
    config: KnotConfig
    parents: Mapping[str, Knot | Ref]
    constants: Mapping[str, object]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        process = cls.__dict__.get("process")
        if process is None:
            return
        owner = f"{_qualified(cls)}.process"
        spec = ProcessSpec.of(process, owner=owner, skip_self=True)
        if not cls._accepts_framework_kwargs(process):
            raise KnotDefinitionError(
                f"{owner} must end with **_ (e.g. `async def process(self, x: int, **_: Any)`)"
                " so the knot keeps working when the framework passes new arguments"
            )
        cls._spec = spec

    @staticmethod
    def _accepts_framework_kwargs(process: Callable[..., Any]) -> bool:
        return any(p.kind is p.VAR_KEYWORD for p in inspect.signature(process).parameters.values())

    def __init__(
        self,
        *,
        _config: KnotConfig | None = None,
        tapestry: Registrar | None = None,
        **inputs: object,
    ) -> None:
        cls = type(self)
        if _config is None:
            raise WiringError(
                f"{cls.__qualname__} needs an explicit id: pass _config=KnotConfig(id='...')"
            )
        if not isinstance(_config, KnotConfig):
            raise WiringError(
                f"{cls.__qualname__}: _config must be a KnotConfig, got {type(_config).__name__}"
            )
        self.id = self._checked_id(_config.id)
        self.config = _config
        parents: dict[str, Knot | Ref] = {}
        constants: dict[str, object] = {}
        for name, value in inputs.items():
            if isinstance(value, Knot | Ref):
                parents[name] = value
            else:
                constants[name] = value
        self.parents = parents
        self.constants = constants
        spec = cls._spec
        if spec is None:
            raise KnotDefinitionError(
                f"{cls.__qualname__} defines no process(); subclass Knot and write "
                "`async def process(self, ..., **_)`"
            )
        spec.check_inputs(self.id, inputs)
        registrar = tapestry if tapestry is not None else _current_registrar.get()
        if registrar is not None:
            registrar.register(self)

    def _checked_id(self, knot_id: object) -> KnotId:
        return check_knot_id(knot_id)

    @property
    def knot_class(self) -> str:
        """The qualified name of the code this knot runs, as recorded in lineage."""
        return _qualified(type(self))

    def identity_settings(self) -> dict[str, object]:
        """Settings that can change this knot's output; they enter its config hash.

        Built-in nodes add their callables (predicate, selector, combine, ...).
        """
        return {
            "error_policy": self.config.error_policy.value,
            "validate_io": self.config.validate_io,
        }

    @property
    def config_hash(self) -> ContentHash:
        """Hash of the knot's class, output-relevant settings and constants."""
        cached: ContentHash | None = self.__dict__.get("_config_hash")
        if cached is not None:
            return cached
        cls = type(self)
        per_class: dict[tuple[object, ...], ContentHash] | None = None
        key = (self.config.error_policy, self.config.validate_io)
        if not self.constants and cls.identity_settings is Knot.identity_settings:
            # Knots of one class with no constants and default settings share one hash
            # (a fan-out of 10,000 mappers computes it once).
            per_class = cls.__dict__.get("_shared_config_hashes")
            if per_class is None:
                per_class = cls._shared_config_hashes = {}
            cached = per_class.get(key)
        if cached is None:
            cached = config_hash(
                self.knot_class, self.identity_settings(), self.constants, knot_id=self.id
            )
            if per_class is not None:
                per_class[key] = cached
        self.__dict__["_config_hash"] = cached
        return cached

    _shared_config_hashes: ClassVar[dict[tuple[object, ...], ContentHash]]

    @property
    def code_hash(self) -> ContentHash:
        """Hash of this knot's own code (see ``pirn_like.core._identity.code_hash``):
        part of its cache key, so editing the code invalidates memoized outputs."""
        cls = type(self)
        cached: ContentHash | None = cls.__dict__.get("_code_hash")
        if cached is None:
            cached = code_hash(self._code_owner())
            cls._code_hash = cached
        return cached

    _code_hash: ClassVar[ContentHash]

    def _code_owner(self) -> type | Callable[..., Any]:
        return type(self)

    def target(self) -> Callable[..., Any]:
        """The callable the dispatcher invokes with the knot's inputs."""
        return self.process  # type: ignore[attr-defined]  # checked by __init_subclass__

    def __repr__(self) -> str:
        return f"<{type(self).__qualname__} id={self.id!r}>"


class FunctionKnot(Knot):
    """A knot made from a plain function by ``@knot``."""

    fn: ClassVar[Callable[..., Any]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        fn = cls.__dict__.get("fn")
        if fn is not None:
            fn = fn.__func__ if isinstance(fn, staticmethod) else fn
            cls._fn_name = _qualified(fn)
            cls._spec = ProcessSpec.of(fn, owner=cls._fn_name, skip_self=False)

    @property
    def knot_class(self) -> str:
        return type(self)._fn_name

    _fn_name: ClassVar[str]

    def target(self) -> Callable[..., Any]:
        return type(self).fn

    def _code_owner(self) -> type | Callable[..., Any]:
        return type(self).fn


def knot(fn: Callable[..., Any]) -> type[FunctionKnot]:
    """Turn a function into a knot class: ``double(x=param, _config=KnotConfig(id="d"))``.

    Async functions run in the event loop; plain functions run in a worker thread.
    The function's own name and module identify the knot in lineage.
    """
    if not callable(fn) or isinstance(fn, type):
        raise KnotDefinitionError(f"@knot decorates a function, got {fn!r}")
    namespace = {
        "fn": staticmethod(fn),
        "__module__": fn.__module__,
        "__qualname__": fn.__qualname__,
        "__doc__": fn.__doc__,
    }
    return type(fn.__name__, (FunctionKnot,), namespace)


class Optional:
    """Mixin: an ``Err`` from this knot behaves like ``Skipped`` downstream.

    ``class FetchPrefs(Optional, Knot): ...``. The failure is still recorded (the
    knot's lineage says ``skipped`` with reason ``optional_failed`` and the error id),
    but the run does not fail because of it.
    """


class Parameter(Knot):
    """A run-time input, fed by ``RunRequest(parameters={name: value})``.

    Its id is ``param:<name>``. Values are validated (and coerced) against
    ``type_`` with pydantic before anything runs.
    """

    def __init__(
        self,
        name: str,
        type_: Any = object,
        *,
        default: object = _MISSING,
        has_default: bool | None = None,
        description: str = "",
        tapestry: Registrar | None = None,
    ) -> None:
        check_knot_id(name)
        self.name = name
        self.type_ = type_
        self.has_default = (default is not _MISSING) if has_default is None else has_default
        self.default = None if default is _MISSING else default
        super().__init__(
            _config=KnotConfig(id=f"param:{name}", description=description),
            tapestry=tapestry,
        )

    def _checked_id(self, knot_id: object) -> KnotId:
        return KnotId(str(knot_id))

    @property
    def knot_class(self) -> str:
        return "pirn_like.Parameter"

    def identity_settings(self) -> dict[str, object]:
        """A parameter is identified by its name and declared type; its value is its
        output (hashed as ``output_hash``)."""
        tp = self.type_
        type_name = f"{getattr(tp, '__module__', '')}.{getattr(tp, '__qualname__', repr(tp))}"
        return {"name": self.name, "type": type_name}

    async def process(self, **_: Any) -> Any:  # pragma: no cover - the engine feeds parameters
        raise RuntimeError("parameters are resolved by the engine")
