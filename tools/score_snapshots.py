"""Score a run's snapshots on a second dev set after the fact, as a run with --dev-corpus does at each validation.

    python tools/score_snapshots.py results/ding_heavy --out results/ding_heavy_dev.jsonl
    python tools/score_snapshots.py docs/screening/ding_heavy.jsonl --snapshots kept/step*.pth --force \
        --out docs/screening/ding_heavy.jsonl

Each snapshot (a translator a run saved at a validation, OUT_DIR/snapshots/step*.pth) translates the first
--eval-sentences pairs of --dev-corpus greedily; its BLEU and chrF become dev_bleu / dev_chrf of the log's record at the
snapshot's step. The log is written to --out with every record, scored or not, so that tools/compare_runs.py draws
both dev sets' curves.
"""
import argparse
import glob
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from anywhere

from lib import files  # noqa: E402
from lib.cli import KEPT, NOTHING_WRITTEN, int_range, run_main, set_threads  # noqa: E402
from lib.training.log import read_training_log, records_with_scores  # noqa: E402

DEFAULT_OUT = "results/scored_log.jsonl"


def build_parser():
    """The command-line flags."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", metavar="RUN", help="a run's folder (its --out-dir) or its log.jsonl file")
    parser.add_argument("--snapshots", nargs="+", metavar="CHECKPOINT",
                        help="the snapshots to score (default: RUN/snapshots/step*.pth, the last ones the run kept)")
    parser.add_argument("--dev-corpus", default=None,
                        help="the dev set, german<TAB>english lines (default: data/everyday.tsv)")
    parser.add_argument("--eval-sentences", type=int_range(1, 1_000_000), default=500, metavar="N",
                        help="pairs of --dev-corpus translated, from its start (default: %(default)s, as in training)")
    parser.add_argument("--out", default=DEFAULT_OUT,
                        help="the scored log (default: %(default)s, replaced by each run; an existing file of your "
                             "own, the RUN's log included, only with --force)")
    parser.add_argument("--force", action="store_true", help="overwrite an existing --out file")
    parser.add_argument("--threads", type=int_range(1, 256), default=1, metavar="N",
                        help="torch threads (default: %(default)s)")
    return parser


def snapshot_paths(args):
    """The --snapshots given, or the run folder's own; each checked as an input. Raises FileNotFoundError when there
    is none."""
    from lib.translation.translator import TRANSLATOR_HINT
    paths = args.snapshots
    if paths is None:
        paths = sorted(glob.glob(os.path.join(glob.escape(args.run), "snapshots", "step*.pth")))
        if not paths:
            raise FileNotFoundError(f"RUN {args.run} has no snapshots/step*.pth: name the snapshots with --snapshots")
    for path in paths:
        files.check_input(path, "--snapshots", seekable=True, hint=TRANSLATOR_HINT)
    return paths


def score(paths, pairs, progress=True):
    """{step: (BLEU, chrF)} of each snapshot in ``paths`` translating ``pairs`` greedily; the step is the one the
    snapshot stores. Raises ValueError for a checkpoint that stores none (not a run's snapshot)."""
    from tqdm.auto import tqdm
    from lib.translation.translator import Translator
    scores = {}
    for path in tqdm(paths, desc="snapshots", disable=not progress):
        translator = Translator.load(path)
        step = translator.info.get("step")
        if not isinstance(step, int) or isinstance(step, bool):
            raise ValueError(f"--snapshots {path} stores no training step: it is not a snapshot of a run (those are "
                             "OUT_DIR/snapshots/step*.pth)")
        bleu, chrf, _ = translator.evaluate(pairs)
        scores[step] = bleu, chrf
    return scores


def main(args):
    """Score the snapshots, write the log with their dev_bleu / dev_chrf. Returns the records written."""
    from lib.translation.corpus import EVERYDAY_PATH, read_tsv
    from lib.training.log import write_records
    log_path = os.path.join(args.run, "log.jsonl") if os.path.isdir(args.run) else args.run
    files.check_input(log_path, "RUN", seekable=True, hint="give a run's folder (its --out-dir) or its log.jsonl")
    records = read_training_log(args.run)
    paths = snapshot_paths(args)
    dev_corpus = args.dev_corpus or EVERYDAY_PATH
    files.check_input(dev_corpus, "--dev-corpus", seekable=True)
    out = files.check_output(args.out, "--out", args.force, inputs=paths + [dev_corpus], default=DEFAULT_OUT)
    pairs = read_tsv(dev_corpus, "--dev-corpus")[:args.eval_sentences]
    set_threads(args.threads)
    KEPT.text = NOTHING_WRITTEN  # the log is written once every snapshot is scored
    scored = records_with_scores(records, score(paths, pairs), log_path)
    write_records(out, scored)
    for record in scored:
        if "dev_bleu" in record:
            print(f"step {record['step']}: valid BLEU {record['valid_bleu']:.2f}, dev BLEU {record['dev_bleu']:.2f} "
                  f"chrF {record['dev_chrf']:.2f}")
    print(f"{len(paths)} snapshot(s) scored on {len(pairs)} pairs of {dev_corpus}; the log is in {out}")
    return scored


if __name__ == "__main__":
    run_main(main, build_parser().parse_args())
