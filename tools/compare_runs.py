"""Compare translator training runs by step: a Markdown table of validation loss / BLEU and their curves.

    python tools/compare_runs.py results/screen_baseline "word dropout=results/screen_worddrop" --mark-step 1820

Each RUN is a run's --out-dir (its log.jsonl) or a log file, optionally labelled as LABEL=PATH (a RUN that exists as
a path is that path, even with '=' in a name). The table (printed)
has a row per validated step and a cell "valid loss / valid BLEU" per run; the figure draws both against the step.
Runs that shared a machine did different amounts of work per minute, so they are compared by step, not by time.
"""
import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from anywhere

from lib import files  # noqa: E402
from lib.cli import int_range, run_main  # noqa: E402
from lib.training.log import comparison_table, read_training_log  # noqa: E402

DEFAULT_FIGURE = "results/run_comparison.png"


def build_parser():
    """The command-line flags."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", metavar="RUN",
                        help="a run's folder (its --out-dir) or its log.jsonl file; LABEL=PATH names it in the "
                             "table and legend (default: the folder's or file's name)")
    parser.add_argument("--figure", default=DEFAULT_FIGURE,
                        help="where the curves are saved (default: %(default)s, replaced by each run; an "
                             "existing file of your own only with --force)")
    parser.add_argument("--force", action="store_true", help="overwrite an existing --figure file")
    parser.add_argument("--mark-step", type=int_range(0, 10 ** 9), action="append", default=[],
                        help="draw a dotted line at this step, e.g. where a second leg of training starts "
                             "(repeatable)")
    parser.add_argument("--no-show", action="store_true", help="save the figure without opening a window")
    return parser


def parse_run(text):
    """'LABEL=PATH' -> (LABEL, PATH); a bare PATH, or any path that exists (even one with '=' in a name), is labelled
    by its name (without .jsonl). An empty label or path is a ValueError."""
    label, separator, folder = text.partition("=")
    if not separator or os.path.exists(text):
        folder = text
        label = os.path.basename(os.path.normpath(text)).removesuffix(".jsonl")
    elif not label.strip() or not folder:
        raise ValueError(f"RUN {text!r} has an empty {'label' if not label.strip() else 'path'}: write LABEL=PATH, or "
                         "the PATH alone (labelled by its name)")
    return label, folder


def read_run(path):
    """The records of a run's folder or log file (lib.training.log.read_training_log); standard input (``-``,
    /dev/stdin), a pipe or a FIFO is read once into a temporary file first."""
    if files.is_stdin(path) or (os.path.exists(path) and not os.path.isdir(path) and not os.path.isfile(path)):
        with files.open_input(path, "RUN") as stream, tempfile.TemporaryDirectory() as folder:
            copy = os.path.join(folder, "log.jsonl")
            with open(copy, "w", encoding="utf-8") as handle:
                handle.write(stream.read())
            return read_training_log(copy)
    return read_training_log(path)


def main(args):
    """Print the table, save the figure. Returns the table."""
    runs, paths = {}, []
    for text in args.runs:
        label, folder = parse_run(text)
        paths.append(folder)
        if label in runs:
            raise ValueError(f"two runs are labelled {label!r}: name them apart with LABEL=FOLDER")
        runs[label] = read_run(folder)
    from lib.plot import check_figure_output, finish_figure, show_run_comparison
    figure_path = check_figure_output(args.figure, "--figure", args.force, DEFAULT_FIGURE, inputs=paths)
    table = comparison_table(runs)
    print(table)
    path = finish_figure(show_run_comparison(runs, args.mark_step), figure_path, show=not args.no_show)
    print(f"Curves saved to {path}")
    return table


if __name__ == "__main__":
    run_main(main, build_parser().parse_args())
