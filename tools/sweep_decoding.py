"""Choose the beam width and the length penalty on the validation split: a Markdown table of BLEU / chrF.

    python tools/sweep_decoding.py --checkpoint results/translation/best.pth --beams 1 4 8 --length-penalties 0.8 1 1.2
    python tools/sweep_decoding.py --average results/translation/snapshots/*.pth

Rows are beam widths, columns length penalties (GNMT's alpha; greedy decoding, beam 1, has none, so its row holds one
score). The best setting by BLEU (chrF breaks ties) is printed next, then the command that stores it with the
translator (run_translation.py --export PATH ... --beam B --length-penalty A), which --test, --input and --eval then
use by default. The test split is not offered: choose on the valid split, then report the test split once.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from anywhere

from lib import files  # noqa: E402
from lib.cli import KEPT, NOTHING_WRITTEN, float_range, int_range, run_main, set_threads  # noqa: E402


def build_parser():
    """The command-line flags."""
    from lib.translation.decoding import BEAM_RANGE, LENGTH_PENALTY_RANGE
    from lib.translation.translator import SHIPPED_CHECKPOINT
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", default=SHIPPED_CHECKPOINT,
                        help="translator checkpoint (default: the shipped data/translator.pth)")
    parser.add_argument("--average", nargs="+", metavar="CHECKPOINT",
                        help="use the average of these checkpoints' weights instead of --checkpoint")
    parser.add_argument("--beams", nargs="+", type=int_range(*BEAM_RANGE), default=[1, 4, 8], metavar="WIDTH",
                        help="beam widths to try, 1 for greedy (default: 1 4 8)")
    parser.add_argument("--length-penalties", nargs="+", type=float_range(*LENGTH_PENALTY_RANGE),
                        default=[0.6, 0.8, 1.0, 1.2, 1.5], metavar="ALPHA",
                        help=f"length penalties to try with each beam wider than 1, from {LENGTH_PENALTY_RANGE[0]:g} "
                             f"to {LENGTH_PENALTY_RANGE[1]:g} (default: 0.6 0.8 1.0 1.2 1.5)")
    parser.add_argument("--corpus", default=None,
                        help="corpus whose valid split is scored (default: the installed Ding dictionary)")
    parser.add_argument("--corpus-format", default="ding", choices=("ding", "tsv", "iwslt"),
                        help="format of --corpus (default: %(default)s)")
    parser.add_argument("--threads", type=int_range(1, 256), default=2, metavar="N",
                        help="batches translated at once, one torch thread each (default: %(default)s)")
    return parser


def sweep(translator, pairs, beams, length_penalties, workers=1):
    """{(beam, alpha): (BLEU, chrF)} of ``translator`` on ``pairs``; greedy (beam 1) is scored once, as alpha None."""
    scores = {}
    for beam in sorted(set(beams)):
        for alpha in ([None] if beam == 1 else sorted(set(length_penalties))):
            bleu, chrf, _ = translator.evaluate(pairs, beam=beam, workers=workers,
                                                length_penalty=1.0 if alpha is None else alpha)
            scores[beam, alpha] = bleu, chrf
    return scores


def sweep_table(scores):
    """The Markdown table of ``sweep``'s scores: a row per beam, a column per length penalty."""
    alphas = sorted({alpha for _, alpha in scores if alpha is not None})
    lines = ["| beam | " + " | ".join(f"alpha {alpha:g}" for alpha in alphas) + " |" if alphas else "| beam | |",
             "| --- |" + " --- |" * max(len(alphas), 1)]
    for beam in sorted({beam for beam, _ in scores}):
        cells = ([f"{scores[beam, None][0]:.2f} / {scores[beam, None][1]:.2f}"] if beam == 1 else
                 [f"{scores[beam, alpha][0]:.2f} / {scores[beam, alpha][1]:.2f}" for alpha in alphas])
        lines.append(f"| {beam} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(args):
    """Print the table (cells BLEU / chrF) and the best setting. Returns the scores."""
    from lib.translation.corpus import read_corpus, split_corpus
    from lib.translation.translator import Translator
    for path in args.average or [args.checkpoint]:
        files.check_input(path, "--average" if args.average else "--checkpoint", seekable=True)
    if args.corpus is not None and args.corpus_format != "iwslt":  # iwslt: the prefix of a .de / .en file pair
        files.check_input(args.corpus, "--corpus", seekable=True)
    set_threads(1)  # one torch thread per batch; --threads batches at once
    KEPT.text = NOTHING_WRITTEN  # the table is printed once every setting is scored
    translator = Translator.average(args.average) if args.average else Translator.load(args.checkpoint)
    pairs = split_corpus(read_corpus(args.corpus, args.corpus_format, sentences_only=True))["valid"]
    if not pairs:
        raise ValueError(f"the valid split of {args.corpus} is empty: it holds full sentences only")
    scores = sweep(translator, pairs, args.beams, args.length_penalties, workers=args.threads)
    print(f"{len(pairs)} valid sentences, BLEU / chrF")
    print(sweep_table(scores))
    (beam, alpha), (bleu, chrf) = max(scores.items(), key=lambda item: item[1])  # BLEU, then chrF
    flags = "--beam 1" if alpha is None else f"--beam {beam} --length-penalty {alpha:g}"
    print(f"Best by BLEU: {flags}, BLEU {bleu:.2f} chrF {chrf:.2f}")
    source = "--average " + " ".join(args.average) if args.average else f"--checkpoint {args.checkpoint}"
    print(f"Store it as the translator's default decoding: python run_translation.py --export PATH {source} {flags}")
    return scores


if __name__ == "__main__":
    run_main(main, build_parser().parse_args())
