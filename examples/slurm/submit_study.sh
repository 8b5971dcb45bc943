#!/usr/bin/env bash
# Submit a whole ERM-vs-DANN study as dependent SLURM jobs:
#   model download (login node, needs internet) -> manifest -> ERM and DANN training
#   -> evaluation of each -> embeddings (array) -> analysis and report.
#   bash examples/slurm/submit_study.sh [--dry-run] STUDY_DIR
# With --dry-run the sbatch commands are printed with placeholder job ids instead of run.
set -euo pipefail
DRY=0
if [ "${1:-}" = "--dry-run" ]; then DRY=1; shift; fi
STUDY=${1:?usage: submit_study.sh [--dry-run] STUDY_DIR}
HERE=$(cd "$(dirname "$0")" && pwd)
M=$STUDY/manifest/manifest.parquet
mkdir -p logs
COUNTER=$(mktemp); echo 0 >"$COUNTER"; trap 'rm -f "$COUNTER"' EXIT
submit() {  # submit [sbatch args...] -> prints the job id (runs in $(...), so the count lives in a file)
  if [ "$DRY" = 1 ]; then
    local n=$(( $(cat "$COUNTER") + 1 )); echo "$n" >"$COUNTER"
    echo "sbatch --parsable $*" >&2; echo "JOB$n"
  else
    sbatch --parsable "$@"
  fi
}
run() { if [ "$DRY" = 1 ]; then echo "$*" >&2; else "$@"; fi; }

# 1. pretrained weights: compute nodes usually have no internet
run cm download --model wavlm
# 2. manifest of the corpus under the data root (ASVSPOOF5_ROOT or CM_DATA_ROOT)
MAN=$(submit --job-name=cm-manifest --cpus-per-task=16 --time=02:00:00 \
      --wrap "cm manifest --corpus asvspoof5 --validate --out $STUDY/manifest")
# 3. training, after the manifest
ERM=$(submit --dependency=afterok:$MAN "$HERE/train_torchrun.sbatch" wavlm_erm_aug "$STUDY/runs/erm" "$M")
DANN=$(submit --dependency=afterok:$MAN "$HERE/train_torchrun.sbatch" wavlm_dann "$STUDY/runs/dann" "$M")
# 4. evaluation of each run
EV1=$(submit --dependency=afterok:$ERM "$HERE/eval.sbatch" "$STUDY/runs/erm" "$M" "$STUDY/erm")
EV2=$(submit --dependency=afterok:$DANN "$HERE/eval.sbatch" "$STUDY/runs/dann" "$M" "$STUDY/dann")
# 5. embeddings of both runs as arrays of shards
EM1=$(submit --dependency=afterok:$ERM --array=0-7 "$HERE/embed_array.sbatch" "$M" "$STUDY/embed/erm" "$STUDY/runs/erm")
EM2=$(submit --dependency=afterok:$DANN --array=0-7 "$HERE/embed_array.sbatch" "$M" "$STUDY/embed/dann" "$STUDY/runs/dann")
# 6. analysis and report once everything above has finished
submit --dependency=afterok:$EV1:$EV2:$EM1:$EM2 --job-name=cm-analysis --cpus-per-task=16 --time=04:00:00 \
  --wrap "cm loao $STUDY/embed/erm --manifest $M --out $STUDY/loao && \
          cm probe $STUDY/embed/erm $STUDY/embed/dann --manifest $M --target codec --out $STUDY/probe && \
          cm cka $STUDY/embed/erm $STUDY/embed/dann --out $STUDY/cka && \
          cm report $STUDY --out $STUDY/report" >/dev/null
echo "submitted; report will be in $STUDY/report/report.html" >&2
