"""A run plan: the validated, immutable graph one run executes."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from pirn_like._errors import CycleError, WiringError
from pirn_like._ids import ContentHash, KnotId
from pirn_like.core._config import CachePolicy
from pirn_like.core._hashing import combine_hashes, content_hash
from pirn_like.core._identity import constant_identity
from pirn_like.core._knot import Knot, Optional, Parameter, Ref

__all__ = ["CacheSpec", "PlanNode", "RunPlan", "build_plan", "cache_spec", "make_node", "wire"]


class PlanNode(NamedTuple):
    """One knot of a plan with its wiring resolved to plan indices (a named tuple:
    plans are built per graph version, so construction cost counts)."""

    position: int
    knot: Knot
    inputs: tuple[tuple[str, int], ...]
    """(input name, parent index) for every knot-valued input."""
    parent_count: int
    """Distinct parents: the node is ready once this many have settled."""
    optional: bool
    knot_class: str
    config_hash: ContentHash
    direct: Callable[..., Any] | None
    """The code of a plain async knot (no retry, timeout, validation or limit)."""
    param: str | None
    """The parameter name, for a Parameter."""
    parent_ids: Mapping[str, KnotId]
    """Input name -> parent knot id; shared by every lineage record of this node."""
    cache: CacheSpec | None
    """Set when the knot is memoized."""


class CacheSpec(NamedTuple):
    """The input-independent part of a memoized knot's cache key."""

    policy: CachePolicy
    parts: Mapping[str, ContentHash]
    """``code``, ``config``, ``version`` and ``constant:<name>`` hashes."""

    def key(self, input_hashes: Mapping[str, ContentHash]) -> ContentHash:
        """The cache key of an execution on these inputs."""
        parts = self.parts
        return combine_hashes(
            [
                *(f"{name}={parts[name]}" for name in sorted(parts)),
                *(f"input:{name}={input_hashes[name]}" for name in sorted(input_hashes)),
            ]
        )


def cache_spec(knot: Knot) -> CacheSpec | None:
    """The cache spec of ``knot``, or None when it is not memoized."""
    policy = knot.config.cache
    if policy is None:
        return None
    parts = {
        "code": knot.code_hash,
        "config": knot.config_hash,
        "version": content_hash(policy.version),
    }
    for name, value in knot.constants.items():
        parts[f"constant:{name}"] = ContentHash(combine_hashes((constant_identity(value),)))
    return CacheSpec(policy, parts)


def make_node(
    position: int,
    knot: Knot,
    inputs: tuple[tuple[str, int], ...],
    parent_ids: Mapping[str, KnotId],
    parent_count: int,
) -> PlanNode:
    """A plan node for ``knot``; hashes its constants, so an unhashable one fails now."""
    return PlanNode(
        position,
        knot,
        inputs,
        parent_count,
        isinstance(knot, Optional),
        knot.knot_class,
        knot.config_hash,
        knot.target() if _is_plain_async(knot) else None,
        knot.name if isinstance(knot, Parameter) else None,
        parent_ids,
        cache_spec(knot),
    )


def wire(
    knot: Knot, index: Mapping[KnotId, int], registered: Mapping[KnotId, Knot]
) -> tuple[tuple[tuple[str, int], ...], dict[str, KnotId], list[int]]:
    """Resolve ``knot``'s parents once: (input name, parent index) pairs, the parent
    ids by input name, and the distinct parent indices in order."""
    inputs: list[tuple[str, int]] = []
    parent_ids: dict[str, KnotId] = {}
    for name, p in knot.parents.items():
        pid = p.id if isinstance(p, Knot) else _resolve(p, registered, knot, name).id
        parent_ids[name] = pid
        inputs.append((name, index[pid]))
    if len(inputs) < 2:
        distinct = [inputs[0][1]] if inputs else []
    else:
        distinct = sorted({i for _, i in inputs})
    return tuple(inputs), parent_ids, distinct


@dataclass(frozen=True, slots=True, kw_only=True)
class RunPlan:
    """Nodes in a topological order, with children lists and the roots to start from."""

    nodes: tuple[PlanNode, ...]
    children: tuple[Sequence[int], ...]
    """Each node's children. Plans are cached and shared by runs: never mutate these
    (an extensible run copies them first)."""
    roots: tuple[int, ...]
    terminals: tuple[KnotId, ...]
    parameters: Mapping[str, Parameter]
    index: Mapping[KnotId, int]
    memoized: tuple[KnotId, ...] = ()
    """Knots with a cache policy."""
    pinned: tuple[tuple[KnotId, str], ...] = ()
    """Knots whose config names a dispatcher, with that name."""


def _resolve(parent: Knot | Ref, registered: Mapping[KnotId, Knot], owner: Knot, name: str) -> Knot:
    if isinstance(parent, Knot):
        return parent
    found = registered.get(KnotId(parent.knot_id))
    if found is None:
        raise WiringError(
            f"knot {owner.id!r} input {name!r} refers to Ref({parent.knot_id!r}), "
            f"but no knot with that id is registered"
        )
    return found


def _name_cycle(knots: Iterable[Knot], registered: Mapping[KnotId, Knot]) -> CycleError:
    import networkx as nx  # only on the error path: keeps `import pirn_like` light

    graph: nx.DiGraph[str] = nx.DiGraph()
    for k in knots:
        for name, parent in k.parents.items():
            graph.add_edge(_resolve(parent, registered, k, name).id, k.id)
    ring = [edge[0] for edge in nx.find_cycle(graph)]
    return CycleError(ring)


def build_plan(
    registered: Mapping[KnotId, Knot], terminals: Sequence[Knot | str] | None
) -> RunPlan:
    """Walk back from ``terminals`` (default: knots nothing consumes) and order the graph.

    Raises ``WiringError`` for unknown terminals, dangling refs and duplicate ids, and
    ``CycleError`` naming the ring.
    """
    if terminals is None:
        plan = _assemble(list(registered.values()), registered, None)
        if plan is not None:
            return plan
    roots_out = _terminals(registered, terminals)
    order = _depth_first(roots_out, registered)
    if terminals is None and len(order) < len(registered):
        # Every knot is either consumed or a terminal, so a knot no terminal
        # reaches can only sit in (or feed) a ring.
        ordered = {id(k) for k in order}
        raise _name_cycle([k for k in registered.values() if id(k) not in ordered], registered)
    plan = _assemble(order, registered, roots_out)
    assert plan is not None
    return plan


def _assemble(
    order: list[Knot], registered: Mapping[KnotId, Knot], roots_out: list[Knot] | None
) -> RunPlan | None:
    """The plan of ``order`` (a topological order) ending at ``roots_out``.

    With ``roots_out`` None, ``order`` is the registration order, as a ``with
    Tapestry():`` block builds it: used as is (its terminals being the knots nothing
    consumes) if every parent was registered before its child, else None.
    """
    check = roots_out is None
    index = {k.id: i for i, k in enumerate(order)}
    children: list[list[int]] = [[] for _ in order]
    nodes: list[PlanNode] = []
    roots: list[int] = []
    params: dict[str, Parameter] = {}
    for i, k in enumerate(order):
        if check:
            for p in k.parents.values():
                j = index.get(p.id) if isinstance(p, Knot) else None
                if j is None or j >= i or order[j] is not p:
                    return None  # a Ref, an unregistered parent, or a later one
        inputs, parent_ids, distinct = wire(k, index, registered)
        for p in distinct:
            children[p].append(i)
        if not distinct:
            roots.append(i)
        if isinstance(k, Parameter):
            params[k.name] = k
        nodes.append(make_node(i, k, inputs, parent_ids, len(distinct)))
    if roots_out is None:
        roots_out = [order[i] for i, c in enumerate(children) if not c]
    memoized, pinned = _special(nodes)
    return RunPlan(
        nodes=tuple(nodes),
        children=tuple(children),
        roots=tuple(roots),
        terminals=tuple(k.id for k in roots_out),
        parameters=params,
        index=index,
        memoized=memoized,
        pinned=pinned,
    )


def _special(
    nodes: Sequence[PlanNode],
) -> tuple[tuple[KnotId, ...], tuple[tuple[KnotId, str], ...]]:
    """The plan's memoized knots and its pinned knots with their dispatchers' names."""
    memoized: list[KnotId] = []
    pinned: list[tuple[KnotId, str]] = []
    for n in nodes:
        if n.cache is not None:
            memoized.append(n.knot.id)
        name = n.knot.config.dispatcher
        if name is not None:
            pinned.append((n.knot.id, name))
    return tuple(memoized), tuple(pinned)


def _is_plain_async(knot: Knot) -> bool:
    """An async knot with no retry, timeout, validation, limit, pinned dispatcher or
    cache: just await it."""
    config = knot.config
    spec = type(knot)._spec
    return (
        knot._execution == "process"
        and spec is not None
        and spec.is_async
        and config.retry is None
        and config.timeout is None
        and not config.validate_io
        and config.max_concurrency is None
        and config.dispatcher is None
        and config.cache is None
    )


def _terminals(
    registered: Mapping[KnotId, Knot], terminals: Sequence[Knot | str] | None
) -> list[Knot]:
    if terminals is None:
        consumed: set[KnotId] = set()
        for k in registered.values():
            for name, parent in k.parents.items():
                consumed.add(_resolve(parent, registered, k, name).id)
        roots_out = [k for k in registered.values() if k.id not in consumed]
        if not roots_out and registered:
            raise _name_cycle(registered.values(), registered)
        return roots_out
    roots_out = []
    for t in terminals:
        if isinstance(t, Knot):
            roots_out.append(t)
        elif isinstance(t, str) and (found := registered.get(KnotId(t))) is not None:
            roots_out.append(found)
        else:
            raise WiringError(
                f"terminal {t!r} is not a knot registered in this tapestry; "
                f"registered: {sorted(registered)[:20]}"
            )
    return roots_out


def _depth_first(roots_out: list[Knot], registered: Mapping[KnotId, Knot]) -> list[Knot]:
    """Depth-first post-order from the terminals: a topological order. A node met
    again while still on the stack closes a ring."""
    order: list[Knot] = []
    state: dict[int, int] = {}  # id(knot) -> 1 visiting, 2 done
    by_id: dict[KnotId, Knot] = {}
    for root in roots_out:
        stack: list[tuple[Knot, list[Knot]]] = []
        if state.get(id(root)) == 2:
            continue
        state[id(root)] = 1
        stack.append((root, _parents_of(root, registered)))
        while stack:
            node, pending = stack[-1]
            if pending:
                parent = pending.pop()
                mark = state.get(id(parent))
                if mark == 1:
                    raise _name_cycle([n for n, _ in stack] + [parent], registered)
                if mark is None:
                    state[id(parent)] = 1
                    stack.append((parent, _parents_of(parent, registered)))
                continue
            stack.pop()
            state[id(node)] = 2
            other = by_id.get(node.id)
            if other is not None and other is not node:
                raise WiringError(
                    f"two different knots have the id {node.id!r} ({other!r} and {node!r}); "
                    "knot ids must be unique in a tapestry"
                )
            by_id[node.id] = node
            order.append(node)
    return order


def _parents_of(knot: Knot, registered: Mapping[KnotId, Knot]) -> list[Knot]:
    return [_resolve(p, registered, knot, name) for name, p in reversed(list(knot.parents.items()))]
