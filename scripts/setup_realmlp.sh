#!/usr/bin/env bash
# Create (or reuse) the virtualenv that runs RealMLP (pytabkit) for benchmarks/quality/realmlp_runner.py.
# It is separate from neuroflow's venv on purpose: torch never enters neuroflow's dependencies.
#
#   scripts/setup_realmlp.sh            # venv at ${REALMLP_VENV:-$HOME/.cache/neuroflow/realmlp-venv}
#   "$REALMLP_VENV/bin/python" benchmarks/quality/realmlp_runner.py JOB_DIR
#
# torch==2.13.0 is the CPU build (2.13.0+cpu, 192 MB wheel) that pip finds on this kind of machine's disk; from PyPI
# alone, Linux x86_64 torch is a CUDA build of several GB. First run: 1 to 2 minutes (67-110 s seen here), 1.5 GB
# (torch 750 MB, pyarrow 170 MB, scipy 140 MB). Reuse is keyed by a hash of the Python version and the pins.
set -euo pipefail
VENV="${REALMLP_VENV:-$HOME/.cache/neuroflow/realmlp-venv}"
PYTHON="${PYTHON:-python3.11}"

# What the runner asks for, then everything they pull in, at the versions verified together.
PINS="torch==2.13.0 pytabkit==1.7.3 pandas==3.1.1 pyarrow==26.0.1 scikit-learn==1.9.1 numpy==2.4.6"
CONSTRAINTS="pytorch-lightning==2.6.6 torchmetrics==1.9.0 lightning-utilities==0.15.3 scipy==1.17.1 joblib==1.6.0
threadpoolctl==3.8.0 narwhals==2.29.0 cloudpickle==3.1.3 psutil==7.2.2 sympy==1.14.0 mpmath==1.3.0 networkx==3.6.1
Jinja2==3.1.6 MarkupSafe==3.0.4 filelock==4.3.2 fsspec==2026.9.0 typing_extensions==4.16.0 packaging==26.4
PyYAML==6.0.4 tqdm==4.70.1 python-dateutil==4.0.0 tzdata==2026.6 aiohttp==3.14.5 aiohappyeyeballs==2.7.1
aiosignal==1.4.0 attrs==26.1.0 frozenlist==1.8.0 multidict==7.2.1 propcache==0.5.4 yarl==1.25.1 idna==3.20"

# shellcheck disable=SC2086
want="$(echo "$("$PYTHON" --version)" $PINS $CONSTRAINTS | sha256sum | cut -c1-16)"  # word-split on purpose
have="$(cat "$VENV/.realmlp-deps" 2>/dev/null || true)"
if [ "$want" != "$have" ]; then
  echo "==> installing torch (CPU) and pytabkit into $VENV (1 to 2 minutes, 1.5 GB the first time)"
  rm -rf "$VENV"
  mkdir -p "$(dirname "$VENV")"
  "$PYTHON" -m venv "$VENV"
  constraints="$(mktemp)"
  trap 'rm -f "$constraints"' EXIT
  tr ' ' '\n' <<<"$CONSTRAINTS" >"$constraints"
  # shellcheck disable=SC2086
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --only-binary=:all: \
    -c "$constraints" $PINS
  echo "$want" >"$VENV/.realmlp-deps"
fi

"$VENV/bin/python" - <<'EOF'
import torch
from pytabkit import RealMLP_TD_Classifier, RealMLP_TD_Regressor  # noqa: F401

torch.randn(3) @ torch.randn(3)
if torch.version.cuda is not None:
    print(f"warning: torch {torch.__version__} is a CUDA build (several GB); the CPU build is all the runner needs")
print(f"==> RealMLP venv ready: torch {torch.__version__}, pytabkit imports")
EOF
