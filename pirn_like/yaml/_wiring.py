"""The graph checks of a pipeline: unique ids, references that name nodes (or branch
arms), each node shape's required inputs, and no cycles; all before anything is built."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pirn_like._errors import WiringError
from pirn_like.core._knot import check_knot_id
from pirn_like.protocols import Dispatcher
from pirn_like.yaml._callables import CallableResolver
from pirn_like.yaml._model import (
    AggregatorNode,
    BranchNode,
    DictMapNode,
    GateNode,
    KnotNode,
    MapNode,
    ParameterNode,
    Pipeline,
    ReduceNode,
    SinkNode,
    SourceNode,
    SubTapestryNode,
    ZipMapNode,
)
from pirn_like.yaml._source import Located, Path
from pirn_like.yaml._validate import close_matches

__all__ = [
    "ARM",
    "ClassNode",
    "ComputeNode",
    "Env",
    "at",
    "check_ids",
    "check_wiring",
    "referenced_id",
    "topological",
    "wired",
]

ClassNode = KnotNode | SourceNode | SinkNode | SubTapestryNode
ComputeNode = (
    ClassNode
    | MapNode
    | ZipMapNode
    | DictMapNode
    | BranchNode
    | GateNode
    | AggregatorNode
    | ReduceNode
)
# The parent each node shape needs, and what it holds.
_REQUIRED_PARENT: dict[type[Any], tuple[str, str]] = {
    MapNode: ("over", "the node giving the list to map over"),
    DictMapNode: ("over", "the node giving the dict to map over"),
    BranchNode: ("input", "the node whose value the branch routes"),
    GateNode: ("input", "the node whose value the gate passes on"),
    ReduceNode: ("of", "the node giving the list to fold"),
}
# ``route[big]``: the arm ``big`` of the branch node ``route``.
ARM = re.compile(r"(?P<branch>[^\[\]]+)\[(?P<tag>[^\[\]]+)\]\Z")


@dataclass(frozen=True, slots=True)
class Env:
    """What the checks and the builder share: the pipeline, where its values sit, the
    callable resolver and the dispatcher names the application gave."""

    pipeline: Pipeline
    located: Located
    resolver: CallableResolver
    dispatchers: Mapping[str, Dispatcher]


def at(index: int, *rest: str | int) -> Path:
    """The path of node ``index`` (and a field in it) in the YAML."""
    return ("nodes", index, *rest)


def check_ids(env: Env) -> dict[str, int]:
    index: dict[str, int] = {}
    for i, node in enumerate(env.pipeline.nodes):
        try:
            check_knot_id(node.id)
        except WiringError as exc:
            raise env.located.error(str(exc), at(i, "id")) from None
        if node.id in index:
            first = env.located.mark(at(index[node.id], "id"))
            where = f" (first at line {first.line})" if first else ""
            raise env.located.error(
                f"duplicate node id {node.id!r}{where}: every node needs its own id", at(i, "id")
            )
        index[node.id] = i
    return index


def wired(node: ComputeNode) -> Iterator[tuple[Path, str, str]]:
    """Each knot-valued input: its path in the node, its input name, the node it reads."""
    for name, ref in node.parents.items():
        yield ("parents", name), name, ref
    if isinstance(node, ZipMapNode):
        for name, ref in node.over.items():
            yield ("over", name), name, ref


def referenced_id(ref: str) -> str:
    """The node id a parent reference reads (``route[big]`` reads ``route``)."""
    arm = ARM.match(ref)
    return arm["branch"] if arm else ref


def _check_reference(env: Env, index: Mapping[str, int], i: int, where: Path, ref: str) -> None:
    node = env.pipeline.nodes[i]
    name = where[-1]
    if ref in index:
        return
    arm = ARM.match(ref)
    target = env.pipeline.nodes[index[arm["branch"]]] if arm and arm["branch"] in index else None
    if arm and isinstance(target, BranchNode):
        if arm["tag"] in target.branches:
            return
        problem = (
            f"reads arm {arm['tag']!r} of branch {target.id!r}"
            f"{close_matches(arm['tag'], target.branches)}; its arms: {target.branches}"
        )
    elif arm and target is not None:
        problem = f"reads {ref!r}, but {target.id!r} is a {target.type} node, not a branch"
    else:
        problem = f"refers to unknown node {ref!r}{close_matches(ref, list(index))}"
    raise env.located.error(f"node {node.id!r}: parent {name!r} {problem}", at(i, *where))


def check_wiring(env: Env, index: Mapping[str, int]) -> None:
    for i, node in enumerate(env.pipeline.nodes):
        if isinstance(node, ParameterNode):
            continue
        inputs = list(wired(node))
        for where, _, ref in inputs:
            _check_reference(env, index, i, where, ref)
        if isinstance(node, ZipMapNode):
            clash = sorted(set(node.over) & set(node.parents))
            if clash:
                raise env.located.error(
                    f"zip_map node {node.id!r}: input {clash[0]!r} is given both in over "
                    "and parents",
                    at(i, "parents", clash[0]),
                    key=True,
                )
        if isinstance(node, SourceNode) and inputs:
            raise env.located.error(
                f"source node {node.id!r} cannot have parents: a source brings values in "
                "from outside (give it constants; use type: knot to consume other nodes)",
                at(i, "parents"),
                key=True,
            )
        both = sorted({name for _, name, _ in inputs} & set(node.constants))
        if both:
            raise env.located.error(
                f"node {node.id!r}: input {both[0]!r} is given both in parents and constants",
                at(i, "constants", both[0]),
                key=True,
            )
        required = _REQUIRED_PARENT.get(type(node))
        if required and required[0] not in node.parents:
            raise env.located.error(
                f"{node.type} node {node.id!r} needs parents.{required[0]}: the id of "
                f"{required[1]}",
                at(i),
            )
        if isinstance(node, AggregatorNode) and not node.parents:
            raise env.located.error(
                f"aggregator node {node.id!r} needs at least one entry in parents", at(i)
            )
        if node.cache is not False and env.pipeline.data_store is None:
            raise env.located.error(
                f"node {node.id!r}: cache replays outputs from a data store: set data_store "
                "at the top level (e.g. memory:// or file:///path/to/values)",
                at(i, "cache"),
                key=True,
            )
        if node.dispatcher is not None and node.dispatcher not in env.dispatchers:
            raise env.located.error(
                f"node {node.id!r}: unknown dispatcher {node.dispatcher!r}"
                f"{close_matches(node.dispatcher, list(env.dispatchers))}; pass it to "
                f"load_pipeline(dispatchers={{{node.dispatcher!r}: ...}}) (given: "
                f"{sorted(env.dispatchers) or 'none'})",
                at(i, "dispatcher"),
            )


def topological(env: Env, index: Mapping[str, int]) -> list[int]:
    """Node indexes, parents first; a ring is reported at its first node."""
    order: list[int] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    nodes = env.pipeline.nodes

    def parents_of(node_id: str) -> list[str]:
        node = nodes[index[node_id]]
        if isinstance(node, ParameterNode):
            return []
        return [referenced_id(ref) for _, _, ref in wired(node)]

    for root in index:
        stack: list[tuple[str, list[str]]] = []
        if state.get(root) == 2:
            continue
        state[root] = 1
        stack.append((root, parents_of(root)))
        while stack:
            current, pending = stack[-1]
            if not pending:
                stack.pop()
                state[current] = 2
                order.append(index[current])
                continue
            nxt = pending.pop()
            if state.get(nxt) == 1:
                path = [n for n, _ in stack]
                ring = path[path.index(nxt) :]  # each node reads the next one
                start = min(range(len(ring)), key=lambda k: index[ring[k]])
                ring = ring[start:] + ring[:start]
                shown = " -> ".join([*ring, ring[0]])
                raise env.located.error(
                    f"the pipeline has a cycle (each node reads the next): {shown}; "
                    "a node cannot depend on itself",
                    at(index[ring[0]], "parents"),
                    key=True,
                )
            if state.get(nxt) is None:
                state[nxt] = 1
                stack.append((nxt, parents_of(nxt)))
    return order
