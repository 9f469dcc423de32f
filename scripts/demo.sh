#!/usr/bin/env bash
# Runs a demo pipeline on the embedded defaults (creates its own venv on first use).
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${PIRN_LIKE_VENV:-.venv}"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e .
exec "$venv/bin/python" examples/demo.py "$@"
