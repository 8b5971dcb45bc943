#!/usr/bin/env bash
# The cm demo study as plain cm commands: toy corpus -> manifest -> augmentation ->
# ERM and DANN training -> per-codec evaluation and a stress sweep -> embeddings ->
# loao / probe / cka / patch -> report. Every step skips work that is complete, so the
# script can simply be run again after an interruption.
#
#   bash examples/pipeline.sh [OUT]        (default OUT=runs/pipeline)
set -euo pipefail
OUT=${1:-runs/pipeline}
M=$OUT/manifest/manifest.parquet

cm download toy --size small                       # builds <data_root>/toy with coded eval copies
cm manifest --corpus toy --validate --out "$OUT/manifest"
cm degrade --manifest "$M" --split train \
    --policy "clean:0.25, mp3:kbps=16|32:0.25, alaw:0.25, telephony:0.25" --variants 1 \
    --out "$OUT/augment"

for method in erm dann; do
  cm train --preset "toy_lcnn_$method" --manifest "$M" \
      --augment-manifest "$OUT/augment/manifest.parquet" --out "$OUT/runs/$method"
done

cm eval --run "$OUT/runs/erm" --manifest "$M" --by codec --by attack --in-domain clean \
    --bootstrap 200 --out "$OUT/eval/erm"
cm eval --run "$OUT/runs/dann" --manifest "$M" --by codec --by attack --in-domain clean \
    --bootstrap 200 --compare "$OUT/eval/erm/metrics.json" --out "$OUT/eval/dann"
for method in erm dann; do
  cm eval --run "$OUT/runs/$method" --manifest "$M" --degrade "noise:type=white:snr=20|10|5" \
      --by attack --out "$OUT/sweep/$method"
  cm embed --manifest "$M" --checkpoint "$OUT/runs/$method" --split eval --out "$OUT/embed/$method"
done

cm loao "$OUT/embed/erm" --manifest "$M" --out "$OUT/loao"
cm probe "$OUT/embed/erm" "$OUT/embed/dann" --manifest "$M" --target codec --out "$OUT/probe"
cm cka "$OUT/embed/erm" "$OUT/embed/dann" --out "$OUT/cka"
cm patch --base "$OUT/runs/erm" --donor "$OUT/runs/dann" --manifest "$M" --split eval --out "$OUT/patch"
cm report "$OUT" --out "$OUT/report"
echo "report: $OUT/report/report.html"
