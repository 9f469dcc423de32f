#!/usr/bin/env bash
# The whole check: a venv, the package with its test extras, lint, types, tests.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${PIRN_LIKE_VENV:-.venv}"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
py="$venv/bin/python"
"$py" -m pip install --quiet --disable-pip-version-check -e '.[test]'
"$venv/bin/ruff" check .
"$venv/bin/ruff" format --check .
"$venv/bin/pyright" --pythonpath "$py" pirn_like
"$py" scripts/check_layers.py
"$py" -m pytest -n 2 "$@"
