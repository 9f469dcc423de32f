"""The node taxonomy: built-in knot shapes."""

from pirn_like._exports import publish
from pirn_like.nodes._aggregator import Aggregator
from pirn_like.nodes._branch import Branch, BranchArm
from pirn_like.nodes._gate import Gate
from pirn_like.nodes._map import DictMap, Map, ZipMap
from pirn_like.nodes._reduce import Reduce
from pirn_like.nodes._sink import Sink
from pirn_like.nodes._source import Source
from pirn_like.nodes._sub_tapestry import SubTapestry

__all__ = [
    "Aggregator",
    "Branch",
    "BranchArm",
    "DictMap",
    "Gate",
    "Map",
    "Reduce",
    "Sink",
    "Source",
    "SubTapestry",
    "ZipMap",
]

publish(__name__, globals(), __all__)
