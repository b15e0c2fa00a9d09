#!/usr/bin/env bash
# Create the FunASR 1.4.16 baseline virtualenv used by the benchmarks (bench/.venv-funasr).
#
# FunASR is installed in its OWN virtualenv, never in the project's .venv. The install is minimal:
# `funasr==1.4.16 --no-deps` plus the packages that FunASR's AutoModel + UniASR inference path
# actually imports (found by blocking imports one by one; see bench/README.md). FunASR's full
# dependency list (modelscope, transformers, umap_learn, tensorboardX, oss2, ...) is not needed for
# local-directory inference. torch is pinned via a constraints file so that pip never resolves a
# CUDA build; torchaudio is NOT installed, so FunASR uses its kaldi-native-fbank fbank backend
# (the same backend the test fixtures were generated with).
#
# Idempotent: a second run with the same package spec only re-verifies the venv.
#
# Environment:
#   PYTHON          interpreter for the venv (default: python3; needs >= 3.10)
#   FUNASR_VENV     venv path (default: bench/.venv-funasr)
#   TORCH_PIP_ARGS  extra pip args for the torch install only, e.g.
#                   "--index-url https://download.pytorch.org/whl/cpu" where no CPU wheel is found locally
#   FUNASR_ALLOW_NONCPU_TORCH=1  accept a torch wheel that is not a +cpu build (large download)
#   FUNASR_FORCE=1  re-run the installs even if the stamp matches
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV_DIR="${FUNASR_VENV:-$BENCH_DIR/.venv-funasr}"
PYTHON="${PYTHON:-python3}"
TORCH_PIP_ARGS="${TORCH_PIP_ARGS:-}"

FUNASR_SPEC="funasr==1.4.16"
# Versions pinned to the environment that produced tests/fixtures (reference.json "versions").
CONSTRAINTS="torch==2.13.0
numpy==2.4.6
kaldi-native-fbank==1.23.0"
# Imported at module level on the AutoModel -> UniASR -> generate() path (each one verified necessary).
RUNTIME_DEPS=(numpy scipy librosa soundfile PyYAML tqdm omegaconf kaldiio requests rapidfuzz six
  kaldi-native-fbank)

SPEC_ID="$FUNASR_SPEC|$(echo "$CONSTRAINTS" | tr '\n' ',')|${RUNTIME_DEPS[*]}|$TORCH_PIP_ARGS"
STAMP="$VENV_DIR/.bench-funasr-stamp"
VENV_PY="$VENV_DIR/bin/python"

log() { echo "[funasr_env] $*" >&2; }

verify() {
  # Imports exactly what bench/funasr_runner.py needs; prints versions. Quiet FunASR's import chatter.
  "$VENV_PY" - <<'EOF'
import contextlib, io, sys
with contextlib.redirect_stdout(io.StringIO()):
    import funasr
    from funasr.auto.auto_model import AutoModel  # noqa: F401
    from funasr.models.uniasr.model import UniASR  # noqa: F401
    from funasr.models.uniasr.beam_search import BeamSearchScama  # noqa: F401
    from funasr.frontends.wav_frontend import WavFrontend  # noqa: F401
import kaldi_native_fbank, numpy, torch
if torch.version.cuda is not None:
    print(f"warning: torch {torch.__version__} is a CUDA build", file=sys.stderr)
print(f"funasr {funasr.__version__}, torch {torch.__version__}, numpy {numpy.__version__}, "
      f"kaldi-native-fbank {getattr(kaldi_native_fbank, '__version__', '?')}, python {sys.version.split()[0]}")
EOF
}

if [[ -x "$VENV_PY" && -f "$STAMP" && "$(cat "$STAMP")" == "$SPEC_ID" && "${FUNASR_FORCE:-0}" != 1 ]]; then
  if verify; then
    log "already set up: $VENV_DIR"
    exit 0
  fi
  log "stamp matches but verification failed; reinstalling"
fi

start=$(date +%s)
"$PYTHON" - <<'EOF'
import sys
if sys.version_info < (3, 10):
    sys.exit(f"{sys.executable} is Python {sys.version.split()[0]}; torch 2.13 needs >= 3.10 (set PYTHON=...)")
EOF

if [[ ! -x "$VENV_PY" ]]; then
  log "creating venv $VENV_DIR with $("$PYTHON" -c 'import sys; print(sys.executable)')"
  "$PYTHON" -m venv "$VENV_DIR"
fi
CFILE="$VENV_DIR/bench-constraints.txt"
echo "$CONSTRAINTS" > "$CFILE"
PIP=("$VENV_PY" -m pip --disable-pip-version-check)

torch_ok() {
  "$VENV_PY" -c 'import torch, sys; sys.exit(0 if torch.__version__.split("+")[0] == "2.13.0" else 1)' 2>/dev/null
}

if ! torch_ok; then
  # Refuse a CUDA torch (~5 GB) unless asked: see which wheel pip would pick before downloading it.
  report="$(mktemp)"
  # shellcheck disable=SC2086
  "${PIP[@]}" install --quiet --dry-run --ignore-installed --no-deps --report "$report" -c "$CFILE" \
    $TORCH_PIP_ARGS torch==2.13.0
  pick="$("$VENV_PY" -c 'import json,sys; i=json.load(open(sys.argv[1]))["install"][0]
print(i["metadata"]["version"], i["download_info"]["url"])' "$report")"
  rm -f "$report"
  log "torch candidate: $pick"
  if [[ "$(uname -s)" == Linux && "${pick%% *}" != *+cpu && "${FUNASR_ALLOW_NONCPU_TORCH:-0}" != 1 ]]; then
    log "refusing: that torch wheel is not a +cpu build (on Linux the PyPI wheel pulls ~5 GB of CUDA)."
    log "re-run with TORCH_PIP_ARGS=\"--index-url https://download.pytorch.org/whl/cpu\" $0"
    log "or FUNASR_ALLOW_NONCPU_TORCH=1 to accept it"
    exit 2
  fi
  # shellcheck disable=SC2086
  "${PIP[@]}" install --quiet -c "$CFILE" $TORCH_PIP_ARGS torch==2.13.0
fi

log "installing $FUNASR_SPEC (--no-deps) and ${RUNTIME_DEPS[*]}"
"${PIP[@]}" install --quiet -c "$CFILE" --no-deps "$FUNASR_SPEC"
pip_log="$(mktemp)"
if ! "${PIP[@]}" install --quiet -c "$CFILE" "${RUNTIME_DEPS[@]}" 2>"$pip_log"; then
  cat "$pip_log" >&2
  rm -f "$pip_log"
  exit 1
fi
# pip reports funasr's deliberately skipped requirements as "conflicts"; show anything else.
n_skipped=$(grep -c "^funasr .* requires .*, which is not installed" "$pip_log" || true)
grep -v -e "^funasr .* requires .*, which is not installed" -e "^ERROR: pip's dependency resolver" \
  -e "is ignored: it is neither a file nor a directory" "$pip_log" >&2 || true
rm -f "$pip_log"
[[ "$n_skipped" -gt 0 ]] && log "($n_skipped of funasr's declared requirements are intentionally not installed; see bench/README.md)"

verify
"${PIP[@]}" freeze > "$VENV_DIR/bench-freeze.txt"
echo "$SPEC_ID" > "$STAMP"
log "done in $(($(date +%s) - start)) s; size $(du -sh "$VENV_DIR" | cut -f1); freeze: $VENV_DIR/bench-freeze.txt"
