#!/usr/bin/env bash
# Create .venv/ at the repository root and install uniasr with every extra and its test tools (development).
# torch is pinned through constraints.txt: an unpinned torch would pull a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -c constraints.txt -e ".[dev,torch,export,serve,synth]"
echo "uniasr installed in .venv/ ($(.venv/bin/python -c 'import torch; print("torch", torch.__version__)'))"
