#!/usr/bin/env bash
# Create (or reuse) the virtualenv with neuroflow's pinned dependencies, then install neuroflow itself.
# Reuse is keyed by a hash of pyproject.toml and requirements.lock, so a cached venv is rebuilt when pins change.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
PYTHON="${PYTHON:-python3}"

if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
  echo "neuroflow needs Python 3.11 ('$PYTHON' is $("$PYTHON" --version 2>&1)); set PYTHON=python3.11" >&2
  exit 1
fi

want="$(cat pyproject.toml requirements.lock | sha256sum | cut -c1-16)"
have="$(cat "$VENV/.neuroflow-deps" 2>/dev/null || true)"
if [ "$want" != "$have" ]; then
  echo "==> installing pinned dependencies into $VENV (about 2 minutes, 2.5 GB the first time)"
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade "pip==26.3"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -c requirements.lock -e ".[dev]"
  echo "$want" > "$VENV/.neuroflow-deps"
else
  # Dependencies are current; (re)link this checkout, which may live at a new path.
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -e .
fi
echo "==> $VENV ready ($("$VENV/bin/neuroflow" --help >/dev/null && echo 'neuroflow installed'))"
