#!/usr/bin/env bash
# Leave-one-codec-out on the toy corpus, with a neural codec among the held-out codecs.
#
# The toy eval holds coded copies (mp3 C05, opus-nb C08, G.723.1, G.726); this adds a copy of
# every clean eval utterance through a neural codec (Mimi by default), trains with an augmentation
# policy that covers C05, C08 and the neural codec, and plans one retraining per codec in which that
# codec's rows AND its augmentation entry are removed (`cm loao --plan --group-by codec`), each
# trained with SEEDS seeds (`--train-seeds`). The report then shows, per held-out codec, the EER of the run that never saw it
# against the all-seen run, with mean and sd over the seeds. Every step reuses finished work.
#
#   bash examples/codec_study.sh [OUT]      OUT=runs/codec_study; SEEDS=3 EPOCHS=4 NEURAL=mimi|dac|encodec
#   neural weights: `cm download --model mimi` once (or CM_MIMI_MODEL=/path/to/weights)
set -euo pipefail
OUT=${1:-runs/codec_study}
SEEDS=${SEEDS:-3}
EPOCHS=${EPOCHS:-4}
NEURAL=${NEURAL:-mimi}
SIZE=${SIZE:-small}
M=$OUT/manifest/manifest.parquet
STUDY=$OUT/study/manifest.parquet

cm download toy --size "$SIZE"
cm manifest --corpus toy --validate --out "$OUT/manifest"
# the neural codec as one more eval condition: a coded copy of each clean eval utterance
python - "$M" "$OUT/clean_eval.parquet" <<'PY'
import sys, pandas as pd
m = pd.read_parquet(sys.argv[1])
m[(m["split"] == "eval") & m["codec"].isna()].to_parquet(sys.argv[2], index=False)
PY
cm degrade --manifest "$OUT/clean_eval.parquet" --chain "$NEURAL" --out "$OUT/neural"
mkdir -p "$OUT/study"
python - "$M" "$OUT/neural/manifest.parquet" "$STUDY" <<'PY'
import sys, pandas as pd
base, coded = pd.read_parquet(sys.argv[1]), pd.read_parquet(sys.argv[2])
pd.concat([base, coded[base.columns]], ignore_index=True).to_parquet(sys.argv[3], index=False)
PY

POLICY="clean:0.4, C05:0.2, C08:0.2, $NEURAL:0.2"
SEED_LIST=$(seq -s, 0 $((SEEDS - 1)))
# one line per (held-out codec, seed) plus the all-seen baseline per seed; what each removed -> removed.txt
cm loao --plan --group-by codec --manifest "$STUDY" --train-preset toy_lcnn_erm_aug --train-seeds "$SEED_LIST" \
    --train-args "--epochs $EPOCHS --augment '$POLICY'" --out "$OUT/loco" 2> "$OUT/removed.txt"
bash "$OUT/loco/plan.sh"                     # on a cluster: each line is one job-array task
cm report "$OUT" --out "$OUT/report"         # per held-out codec: EER seen vs held out, gap mean ± sd over seeds
