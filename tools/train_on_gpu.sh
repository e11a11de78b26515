#!/usr/bin/env bash
# The prepared command for a lent GPU (docs/training-at-scale.md): train a translator for a fixed time, export it as
# float16 and score it on the validation split, all under OUT.
#
# Usage: tools/train_on_gpu.sh OUT MINUTES [training flags of run_translation.py ...]
#   OUT      folder for the run (OUT/run), the exported OUT/translator.pth and OUT/valid.txt (its valid scores
#            beside those of BASELINE=PATH, default the shipped data/translator.pth, with a paired bootstrap)
#   MINUTES  training time (--max-minutes); keep the whole call inside the device's limit
# The corpus is ./.corpus/de-en when present (carry it to a machine without the Debian package), else the installed
# dictionary; CORPUS=PATH (with CORPUS_FORMAT=tsv or iwslt for other formats) overrides both. PYTHON=... picks the
# interpreter (default: .venv's, else python3).
# Runs on the GPU with bfloat16 autocast when torch sees one, else on the CPU (how it is tested here).
# An OUT that holds an earlier call's files is refused unless the flags hold --resume (continue its run) or --force
# (start over, deleting them).
set -euo pipefail
if [ $# -lt 2 ]; then
    sed -n '5,14p' "$0" >&2
    exit 2
fi
out_given=$1
out=$(realpath -m "$1")
minutes=$2
shift 2
again=no
for flag in "$@"; do
    case $flag in --resume|--force) again=yes ;; esac
done
if [ $again = no ] && { [ -e "$out/translator.pth" ] || [ -e "$out/valid.txt" ] || [ -n "$(ls -A "$out/run" 2>/dev/null)" ]; }; then
    echo "error: $out_given holds an earlier run (run/, translator.pth, valid.txt): add --resume to continue it, or --force to" \
         "start over (deleting its files), or choose another OUT" >&2
    exit 1
fi
corpus=${CORPUS:+$(realpath -m "$CORPUS")}
format=${CORPUS_FORMAT:-ding}
baseline=${BASELINE:+$(realpath -m "$BASELINE")}
cd "$(dirname "$0")/.."
baseline=${baseline:-$PWD/data/translator.pth}
python=${PYTHON:-python3}
if [ -z "${PYTHON:-}" ] && [ -x .venv/bin/python ]; then python=.venv/bin/python; fi
if [ -z "$corpus" ]; then
    if [ -f .corpus/de-en ]; then corpus=.corpus/de-en; else corpus=/usr/share/trans/de-en; fi
fi
device_flags=(--device cpu)
if "$python" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    device_flags=(--device cuda --amp)
fi
export PYTHONUNBUFFERED=1
"$python" run_translation.py --train "${device_flags[@]}" --corpus "$corpus" --corpus-format "$format" --out-dir "$out/run" \
    --max-minutes "$minutes" --no-progress "$@"
"$python" run_translation.py --export "$out/translator.pth" --checkpoint "$out/run/best.pth" --force
compare=(); if [ -f "$baseline" ]; then compare=(--compare "$baseline"); fi
"$python" run_translation.py --eval --split valid --checkpoint "$out/translator.pth" --corpus "$corpus" \
    --corpus-format "$format" "${compare[@]}" | tee "$out/valid.txt"
