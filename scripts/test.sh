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
# The HTML report tests drive Debian's Chromium (Playwright cannot download browsers here).
if ! command -v chromium >/dev/null; then
    sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
fi
"$py" -m pytest -n 2 "$@"
