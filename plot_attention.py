"""Draw the trained counting model's attention weights for a few fresh sequences (run `python train.py` first).

    python plot_attention.py                     # 3 sequences from results/model.pth -> results/attention.png
    python plot_attention.py --checkpoint results/softmax.pth --count 5 --out results/attention_softmax.png
    python plot_attention.py --html              # also the interactive page results/attention.html
"""
import argparse
import os

import torch

from lib.cli import int_range, run_main
from lib.files import check_input, check_output
from lib.counting import COUNTING_HINT, load_counting_model, make_counting_data
from lib.plot import check_figure_output, finish_figure, plot_counting_attention

DEFAULT_OUT = "results/attention.png"

MAX_COUNT = 20  # heatmaps in one figure; more are unreadable (and slow to draw)
MAX_ROWS = 200  # heatmap rows (sequences x digits) in one figure, for models with large vocabularies


def build_parser():
    """The command-line flags."""
    parser = argparse.ArgumentParser(description="Draw the counting model's attention weights as heatmaps: a row per "
                                                 "digit being counted, a column per position of the sequence.")
    parser.add_argument("--checkpoint", default="results/model.pth", metavar="FILE",
                        help="the counting model, as written by train.py (default: %(default)s)")
    parser.add_argument("--count", type=int_range(1, MAX_COUNT), default=3, metavar="N",
                        help=f"how many fresh sequences to draw, 1 to {MAX_COUNT} (default: %(default)s)")
    parser.add_argument("--seed", type=int_range(0, 2 ** 31 - 1), default=1234, metavar="N",
                        help="seed of the fresh sequences (default: %(default)s, unlike the training and test seeds)")
    parser.add_argument("--out", default=DEFAULT_OUT, metavar="FILE",
                        help="image file to save the figure to; its extension picks the format (default: "
                             "%(default)s, replaced by each run; an existing FILE of your own only with --force)")
    parser.add_argument("--html", nargs="?", const="", default=None, metavar="FILE",
                        help="also write the attention explorer, one offline web page with each digit's weights over "
                             "the positions of every sequence, to FILE (default: --out with .html, e.g. "
                             "results/attention.html); see docs/attention-explorer.md")
    parser.add_argument("--force", action="store_true", help="overwrite an existing --out or --html FILE")
    parser.add_argument("--no-show", action="store_true", help="only save the figure, even where a display exists")
    return parser


def parse_args(argv=None):
    """Parse the command line (``argv``: list of strings, None: ``sys.argv``)."""
    return build_parser().parse_args(argv)


def main(args):
    """Load the model, attend over ``args.count`` fresh sequences, save (and show) the heatmaps and, with --html, the
    explorer page. Returns the figure's path."""
    check_input(args.checkpoint, "--checkpoint", seekable=True, hint=COUNTING_HINT)
    args.out = check_figure_output(args.out, "--out", args.force, DEFAULT_OUT, inputs=[args.checkpoint])
    if args.html is not None:  # checked before any work; the page beside the default figure is the default page
        default_html = os.path.splitext(DEFAULT_OUT)[0] + ".html"
        args.html = args.html or os.path.splitext(args.out)[0] + ".html"
        check_output(args.html, "--html", args.force, inputs=[args.checkpoint], default=default_html)
        if os.path.realpath(args.html) == os.path.realpath(args.out):
            raise ValueError(f"--html {args.html} is also --out: give the page and the figure different names")
    model, config = load_counting_model(args.checkpoint)
    check_rows(args.count, config.vocab_size)
    digits, weights, predicted, counts = attend(model, config, args.count, args.seed)
    figure = plot_counting_attention(weights, digits, predicted, counts,
                                     title=f"Counting attention ({config.activation})")
    finish_figure(figure, args.out, show=not args.no_show)
    print(f"Correct counts: {(predicted == counts).sum().item()} of {counts.numel()}")
    print(f"Saved the attention heatmap to {args.out}")
    if args.html is not None:
        from lib.explorer.page import counting_page_data, write_page
        size = write_page(counting_page_data(weights, digits, predicted, counts, config.activation, args.checkpoint),
                          args.html)
        print(f"Attention explorer ({size / 1024:.0f} KB) saved to {args.html}: open it in a web browser")
    return args.out


def check_rows(count, vocab_size):
    """Refuse ``count`` sequences when their heatmap rows (a row per digit) would not fit one figure."""
    if count * vocab_size > MAX_ROWS:
        raise ValueError(f"--count {count} would draw {count * vocab_size} heatmap rows for this model's {vocab_size} "
                         f"digits; use --count {max(1, MAX_ROWS // vocab_size)} or fewer")


def attend(model, config, count, seed):
    """Run the model on ``count`` fresh sequences drawn with ``seed``. Returns (digits (count, sequence_length),
    weights (count, vocab_size, sequence_length), predicted and true counts (count, vocab_size))."""
    one_hot, digits, counts = make_counting_data(count, config.sequence_length, config.vocab_size,
                                                 torch.Generator().manual_seed(seed))
    with torch.no_grad():
        logits, weights = model(one_hot)
    return digits, weights, logits.argmax(dim=-1), counts


if __name__ == "__main__":
    run_main(main, parse_args())
