#!/usr/bin/env bash
# Train the token LM on the training transcripts, pick its weight and length bonus on dev per mode, score
# test with and without it (uniasr eval, reading CER of the default model's own output).
# Results: $RESULTS/{dev,test}_<mode>_w<weight>_b<bonus>.json.
# DEV: the tuning set (default: the corpus dev set; data/synth_ja_dev325_ortho/dev is the bigger one that
# `make_corpus --out data/synth_ja_dev325 --num-utts 325 --dev-utts 325 --test-utts 0` and `reading` make).
set -euo pipefail
cd "$(dirname "$0")/../.."
UNIASR=${UNIASR:-.venv/bin/uniasr}
ORDER=${ORDER:-5}  # 5 was best on the 325-utterance dev set of 3/4/5/6 (bench/RESULTS.md)
LM=exp/token_lm/train_${ORDER}gram.arpa.gz
DEV=${DEV:-data/synth_ja_ortho/dev}
RESULTS=${RESULTS:-exp/token_lm/o$ORDER}
mkdir -p $RESULTS
GRID=${GRID:-"0:0 0.1:0 0.2:0 0.3:0 0.1:0.2 0.2:0.2 0.2:0.4 0.3:0.4 0.3:0.7"}   # weight:length_bonus
MODES=${MODES:-"fast normal offline"}
[ -f $LM ] || .venv/bin/python -m recipes.token_lm.train data/synth_ja_ortho/train/text \
  --model src/uniasr/models/default --out $LM --order $ORDER
run() {  # split mode weight bonus
  local out=$RESULTS/$1_$2_w$3_b$4.json ref=data/synth_ja_ortho/test
  [ $1 = dev ] && ref=$DEV
  [ -f $out ] || $UNIASR eval --ref $ref --text kana --mode $2 --json \
    $( [ "$3" != 0 ] && echo --lm $LM --lm-weight $3 --lm-length-bonus $4 ) > $out
  echo "$1 $2 w=$3 b=$4 $(cat $out)"
}
for mode in $MODES; do
  for wb in $GRID; do run dev $mode ${wb%:*} ${wb#*:}; done
  best=$(for wb in $GRID; do w=${wb%:*}; b=${wb#*:}
    echo "$wb $(python3 -c "import json;print(json.load(open('$RESULTS/dev_${mode}_w${w}_b${b}.json'))['cer'])")"
  done | sort -k2 -g | head -1 | cut -d' ' -f1)
  echo "chosen on dev for $mode: $best"
  run test $mode 0 0
  [ "$best" = "0:0" ] || run test $mode ${best%:*} ${best#*:}
done
