"""The public namespace stays complete, and importing it stays light."""

from __future__ import annotations

import json
import subprocess
import sys

import pirn_like
import pirn_like.backends
import pirn_like.dispatchers
import pirn_like.emitters
import pirn_like.nodes


def test_all_names_exist_and_are_public() -> None:
    for module in (
        pirn_like,
        pirn_like.backends,
        pirn_like.dispatchers,
        pirn_like.emitters,
        pirn_like.nodes,
    ):
        for name in module.__all__:
            obj = getattr(module, name)
            if isinstance(obj, type):
                assert "._" not in obj.__module__, f"{name} shows private module {obj.__module__}"


def test_every_public_class_in_subpackages_is_reexported_at_top() -> None:
    for module in (pirn_like.backends, pirn_like.dispatchers, pirn_like.emitters):
        for name in module.__all__:
            assert name in pirn_like.__all__, f"{module.__name__}.{name} missing from pirn_like"


def test_import_loads_no_optional_or_heavy_dependency() -> None:
    code = (
        "import sys, json, pirn_like; "
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'numpy','pandas','pyarrow','networkx','tenacity','hypothesis'})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []
