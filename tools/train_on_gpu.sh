#!/usr/bin/env bash
# The prepared command for a lent GPU (docs/training-at-scale.md): train a translator for a fixed time, export it as
# float16 and score it on the validation split of the corpus it trained on, all under OUT.
#
# Usage: tools/train_on_gpu.sh OUT MINUTES [training flags of run_translation.py ...]
#   OUT      folder for the run (OUT/run), the exported OUT/translator.pth and OUT/valid.txt (its valid scores
#            beside those of BASELINE=PATH, default the shipped data/translator.pth, with a paired bootstrap)
#   MINUTES  training time (--max-minutes); keep the whole call inside the device's limit
# The corpus is the flags' --corpus (and --corpus-format) when given, else CORPUS=PATH (with CORPUS_FORMAT=tsv or
# iwslt for other formats), else the repository's .corpus/de-en when present (carry it to a machine without the
# dictionary), else the Ding dictionary (DING_DICTIONARY, else /usr/share/trans/de-en); training and scoring both use
# it; with --resume and neither, the corpus the run in OUT/run trained on. Paths are relative to the folder it is
# called from (it changes to no other). PYTHON=... picks the interpreter (default: .venv's, else python3).
# Runs on the GPU with bfloat16 autocast when torch sees one, else on the CPU (how it is tested here).
# An OUT that holds an earlier call's files is refused unless the flags hold --resume (continue its run) or --force
# (start over, deleting them).
set -euo pipefail
if [ $# -lt 2 ]; then
    sed -n '/^# Usage:/,/^# (start over/p' "$0" >&2
    exit 2
fi
out_given=$1
out=$(realpath -m "$1")
minutes=$2
shift 2
repository=$(cd "$(dirname "$0")/.." && pwd)
again=no
resume=no
corpus=${CORPUS:-}
format=${CORPUS_FORMAT:-ding}
format_given=${CORPUS_FORMAT:+yes}
previous=""
for flag in "$@"; do  # the corpus flags as run_translation.py reads them (the last one given counts)
    case $previous in
        --corpus) corpus=$flag ;;
        --corpus-format) format=$flag format_given=yes ;;
    esac
    case $flag in
        --resume) again=yes resume=yes ;;
        --force) again=yes ;;
        --corpus=*) corpus=${flag#--corpus=} ;;
        --corpus-format=*) format=${flag#--corpus-format=} format_given=yes ;;
    esac
    previous=$flag
done
python=${PYTHON:-python3}
if [ -z "${PYTHON:-}" ] && [ -x "$repository/.venv/bin/python" ]; then python=$repository/.venv/bin/python; fi
if [ $resume = yes ] && [ -z "$corpus" ] && [ -z "${format_given:-}" ] && [ -f "$out/run/last.pth" ]; then
    # The corpus the run trained on, from its last.pth (an unreadable one is named by the training command below).
    stored=()
    mapfile -d '' -t stored < <(PYTHONPATH=$repository "$python" - "$out/run/last.pth" 2>/dev/null <<'PYTHON'
import sys
from lib.checkpoint import load_checkpoint
config = load_checkpoint(sys.argv[1])["config"]
sys.stdout.write(f"{config.get('corpus') or ''}\0{config.get('corpus_format', 'ding')}\0")
PYTHON
) || true
    if [ ${#stored[@]} -eq 2 ] && [ -n "${stored[0]}" ]; then
        corpus=${stored[0]} format=${stored[1]}
    fi
fi
if [ $again = no ] && { [ -e "$out/translator.pth" ] || [ -e "$out/valid.txt" ] || [ -n "$(ls -A "$out/run" 2>/dev/null)" ]; }; then
    echo "error: $out_given holds an earlier run (run/, translator.pth, valid.txt): add --resume to continue it, or --force to" \
         "start over (deleting its files), or choose another OUT" >&2
    exit 1
fi
if [ -z "$corpus" ]; then
    if [ -f "$repository/.corpus/de-en" ]; then
        corpus=$repository/.corpus/de-en
    else
        corpus=${DING_DICTIONARY:-/usr/share/trans/de-en}
    fi
fi
baseline=${BASELINE:-$repository/data/translator.pth}
device_flags=(--device cpu)
if "$python" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    device_flags=(--device cuda --amp)
fi
export PYTHONUNBUFFERED=1
script=$repository/run_translation.py
"$python" "$script" --train "${device_flags[@]}" --corpus "$corpus" --corpus-format "$format" --out-dir "$out/run" \
    --max-minutes "$minutes" --no-progress "$@"
"$python" "$script" --export "$out/translator.pth" --checkpoint "$out/run/best.pth" --force
compare=(); if [ -f "$baseline" ]; then compare=(--compare "$baseline"); fi
"$python" "$script" --eval --split valid --checkpoint "$out/translator.pth" --corpus "$corpus" \
    --corpus-format "$format" ${compare[@]+"${compare[@]}"} | tee "$out/valid.txt"
