#!/usr/bin/env bash
# Train the token LM on the training transcripts, pick its weight and length bonus on dev per mode, score
# test with and without it (uniasr eval, reading CER of the default model's own output).
# Results: exp/token_lm/{dev,test}_<mode>_w<weight>_b<bonus>.json and run.log.
set -euo pipefail
cd "$(dirname "$0")/../.."
UNIASR=${UNIASR:-.venv/bin/uniasr}
LM=exp/token_lm/train_4gram.arpa.gz
GRID=${GRID:-"0:0 0.1:0 0.15:0 0.2:0.4 0.3:0.7"}   # weight:length_bonus
MODES=${MODES:-"fast normal offline"}
[ -f $LM ] || .venv/bin/python -m recipes.token_lm.train data/synth_ja_ortho/train/text \
  --model src/uniasr/models/default --out $LM --order 4
run() {  # split mode weight bonus
  local out=exp/token_lm/$1_$2_w$3_b$4.json
  [ -f $out ] || $UNIASR eval --ref data/synth_ja_ortho/$1 --text kana --mode $2 --json \
    $( [ "$3" != 0 ] && echo --lm $LM --lm-weight $3 --lm-length-bonus $4 ) > $out
  echo "$1 $2 w=$3 b=$4 $(cat $out)"
}
for mode in $MODES; do
  for wb in $GRID; do run dev $mode ${wb%:*} ${wb#*:}; done
  best=$(for wb in $GRID; do w=${wb%:*}; b=${wb#*:}
    echo "$wb $(python3 -c "import json;print(json.load(open('exp/token_lm/dev_${mode}_w${w}_b${b}.json'))['cer'])")"
  done | sort -k2 -g | head -1 | cut -d' ' -f1)
  echo "chosen on dev for $mode: $best"
  run test $mode 0 0
  [ "$best" = "0:0" ] || run test $mode ${best%:*} ${best#*:}
done
