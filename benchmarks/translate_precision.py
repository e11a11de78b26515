"""Translating in float32, bfloat16 autocast and int8 (dynamic quantization of the feed-forward and output layers):
speed and quality, measured in the same run.

Each precision translates the same sentences with the translator's stored decoding on one torch thread: the Ding
valid split (or its first --sentences) and data/everyday.tsv. Prints, per precision, CPU seconds and sentences per CPU
second (CPU time, so that a machine shared with other work still gives fair ratios), BLEU and chrF; then the ratio to
float32 and the paired bootstrap of each precision's gain over float32 on both sets. A precision is worth adopting
when it is faster and the bootstrap shows no loss (the interval holds 0 and the gain is under 0.3 BLEU).

    python benchmarks/translate_precision.py [--sentences 300] [--precisions float32 bfloat16 int8]

bfloat16 is fast only on processors that compute it natively (avx512_bf16 or AMX); elsewhere torch emulates it, many
times slower than float32.
"""
import argparse
import contextlib
import os
import sys
import time
import warnings

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if __package__ in (None, ""):
    sys.path.insert(0, ROOT)

from lib.cli import int_range, run_main  # noqa: E402
from lib.files import check_input  # noqa: E402
from lib.translation.corpus import DING_PATH, check_corpus, read_corpus, read_tsv, split_corpus  # noqa: E402
from lib.translation.significance import paired_bootstrap  # noqa: E402
from lib.translation.translator import SHIPPED_CHECKPOINT, TRANSLATOR_HINT, Translator  # noqa: E402

PRECISIONS = ("float32", "bfloat16", "int8")
EVERYDAY = os.path.join(ROOT, "data", "everyday.tsv")


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sentences", type=int_range(1, 100000), default=None,
                        help="the first N valid sentences (default: all of them)")
    parser.add_argument("--precisions", nargs="+", choices=PRECISIONS, default=["float32", "int8"],
                        help="precisions to compare with float32 (default: float32 int8; bfloat16 is slow where the "
                             "processor emulates it)")
    parser.add_argument("--checkpoint", default=SHIPPED_CHECKPOINT, help="translator checkpoint (default: shipped)")
    parser.add_argument("--corpus", default=DING_PATH, help="Ding dictionary for the valid split")
    parser.add_argument("--bootstrap-samples", type=int_range(1, 100000), default=1000)
    return parser


def quantized_feed_forward(model):
    """``model`` with its feed-forward and output ``nn.Linear`` layers quantized to int8 (dynamic quantization; the
    embedding Linears, read through their ``.weight``, stay float32)."""
    names = {name for name, module in model.named_modules()
             if isinstance(module, torch.nn.Linear) and ("hidden" in name or name == "decoder_final_dense")}
    with warnings.catch_warnings():  # torch marks its eager-mode quantization deprecated in favour of torchao
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(model, names, dtype=torch.qint8)


def translator_in(precision, checkpoint):
    """(translator, the context to translate in) for ``precision``."""
    translator = Translator.load(checkpoint)
    if precision == "int8":
        translator.model = quantized_feed_forward(translator.model)
    if precision == "bfloat16":
        return translator, lambda: torch.autocast("cpu", dtype=torch.bfloat16)
    return translator, contextlib.nullcontext


def main(args):
    check_input(args.checkpoint, "--checkpoint", seekable=True, hint=TRANSLATOR_HINT)
    check_corpus(args.corpus, "ding")
    torch.set_num_threads(1)
    valid = split_corpus(read_corpus(args.corpus, "ding", sentences_only=True))["valid"][:args.sentences]
    sets = {"valid": valid, "everyday": read_tsv(EVERYDAY)}
    precisions = ["float32"] + [precision for precision in args.precisions if precision != "float32"]
    hypotheses, seconds = {}, {}
    for precision in precisions:
        translator, context = translator_in(precision, args.checkpoint)
        decoding = translator.decoding
        for name, pairs in sets.items():
            started = time.process_time()
            with context():
                bleu, chrf, hypotheses[precision, name] = translator.evaluate(pairs, **decoding)
            seconds[precision, name] = time.process_time() - started
            print(f"{precision:8s} {name:8s}: {len(pairs)} sentences, {seconds[precision, name]:6.1f} CPU s, "
                  f"{len(pairs) / seconds[precision, name]:5.1f} sentences/CPU s; BLEU {bleu:.2f} chrF {chrf:.2f}",
                  flush=True)
    for precision in precisions[1:]:
        speed = sum(seconds["float32", name] for name in sets) / sum(seconds[precision, name] for name in sets)
        print(f"{precision} / float32: {speed:.2f}x the sentences per CPU second")
        for name, pairs in sets.items():
            comparisons = paired_bootstrap([pair.english for pair in pairs], hypotheses["float32", name],
                                           hypotheses[precision, name], samples=args.bootstrap_samples)
            print(f"  {name}: gain over float32, " + "; ".join(c.describe() for c in comparisons.values()))


if __name__ == "__main__":
    run_main(main, build_parser().parse_args())
