#!/usr/bin/env bash
# The GPU checks as one prepared run on a lent device machine, each part inside one 10-minute call:
#   bash benchmarks/gpu_session.sh [train] [codecs]      (no argument: train)
# train (issue 18, ~9 min): full-size WavLM Base training throughput (ERM/DANN x frozen/top:2,
#   bf16, batch 32-256), the loader's share, the feature-cache head step, then cm's CUDA-marked tests.
# codecs (issue 25, ~3 min): full-size EnCodec, DAC and Mimi (random weights, published architectures)
#   on CUDA: real-time factor one utterance per call vs one batch, and cm degrade's corpus mode with
#   its GPU default of 16 utterances per call against one per call (the >= 3x goal).
#
# Why one script: device time is short and counted from the machine's start, so everything
# that belongs together runs in one call and writes what it measured under $OUT.
#
# Prepare once, here (the device image has torch, transformers, pandas, pyarrow, typer, rich,
# scikit-learn, but not soundfile or its cffi, which the loader's FLAC files need):
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
#     -d .whl soundfile cffi pycparser
# then call the device tool's `run` with command "bash benchmarks/gpu_session.sh", carry [".whl"],
# timeout_s 600. Without CUDA (e.g. here) it runs bench_gpu.py --smoke, which checks the script.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
PY=${PYTHON:-python3}

if ls .whl/*.whl >/dev/null 2>&1; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/cm_site .whl/*.whl \
    && export PYTHONPATH=/tmp/cm_site:$PYTHONPATH
fi

{
  date -u
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>/dev/null || echo "no nvidia-smi"
  $PY -c "import os, torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'cpus', os.cpu_count())"
} 2>&1 | tee "$OUT/machine.txt"

loader=()
$PY -c "import soundfile" 2>/dev/null || loader=(--loader-files 0)  # no FLAC I/O: skip the loader line

parts=("$@")
[ ${#parts[@]} -eq 0 ] && parts=(train)
cuda=0
$PY -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)" && cuda=1

for part in "${parts[@]}"; do
  case "$part" in
    train)
      if [ $cuda = 1 ]; then
        timeout 420 $PY benchmarks/bench_gpu.py --batch-sizes 32,64,128,256 --workers 8 "${loader[@]}" \
          --json "$OUT/gpu.json" 2>&1 | tee "$OUT/gpu.log"
        timeout 90 $PY -m pytest -q -p no:cacheprovider -m gpu tests/test_benchmarks.py tests/training 2>&1 \
          | tee "$OUT/gpu_tests.log"
      else
        $PY benchmarks/bench_gpu.py --smoke "${loader[@]}" --json "$OUT/gpu.json" 2>&1 | tee "$OUT/gpu.log"
      fi
      ;;
    codecs)  # corpus mode writes FLAC: it needs soundfile (see "Prepare once" above)
      if [ $cuda = 1 ]; then
        timeout 240 $PY benchmarks/bench_codecs.py --neural --size full --device cuda --n 64 --seconds 4 \
          --json "$OUT/codecs.json" 2>&1 | tee "$OUT/codecs.log"
      else
        $PY benchmarks/bench_codecs.py --smoke --json "$OUT/codecs.json" 2>&1 | tee "$OUT/codecs.log"
      fi
      ;;
    *)
      echo "unknown part '$part' (train, codecs)" >&2
      exit 2
      ;;
  esac
done
echo "results in $OUT"
