#!/usr/bin/env bash
# mypy on the package as it installs: neuroflow/ with models/, pipelines/ and service/ inside it. The checkout keeps
# those folders at the top (setuptools maps them into the namespace); a tree of links gives mypy the installed layout.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
tree="build/typecheck"
rm -rf "$tree"
mkdir -p "$tree/neuroflow"
for entry in neuroflow/*; do
  [ "$(basename "$entry")" = "__pycache__" ] || ln -s "$PWD/$entry" "$tree/neuroflow/"
done
for package in models pipelines service; do
  ln -s "$PWD/$package" "$tree/neuroflow/$package"
done
cd "$tree"
# Paths in mypy's messages are shown as in the checkout (build/typecheck/neuroflow/models/x.py -> models/x.py).
"$OLDPWD/$VENV/bin/mypy" --config-file "$OLDPWD/pyproject.toml" -p neuroflow \
  | sed -E 's#^neuroflow/(models|pipelines|service)/#\1/#'
exit "${PIPESTATUS[0]}"
