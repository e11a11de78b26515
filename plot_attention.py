"""Draw the trained counting model's attention weights for a few fresh sequences (run `python train.py` first).

    python plot_attention.py               # 3 sequences from results/model.pth -> results/attention.png
"""
import argparse

import torch

from lib.counting import load_counting_model, make_counting_data
from lib.plot import finish_figure, plot_counting_attention


def build_parser():
    """The command-line flags."""
    parser = argparse.ArgumentParser(description="Draw the counting model's attention weights as heatmaps: a row per "
                                                 "digit being counted, a column per position of the sequence.")
    parser.add_argument("--model", default="results/model.pth",
                        help="checkpoint written by train.py (default: %(default)s)")
    parser.add_argument("--samples", type=int, default=3,
                        help="how many fresh sequences to draw (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=1234,
                        help="seed of the fresh sequences (default: %(default)s, unlike the training and test seeds)")
    parser.add_argument("--out", default="results/attention.png",
                        help="where to save the figure (default: %(default)s)")
    parser.add_argument("--no-show", action="store_true", help="only save the figure, even where a display exists")
    return parser


def main(args):
    """Load the model, attend over ``args.samples`` fresh sequences, save (and show) the heatmaps. Returns the path."""
    if args.samples < 1:
        raise SystemExit(f"--samples must be at least 1, got {args.samples}")
    try:
        model, config = load_counting_model(args.model)
    except (FileNotFoundError, RuntimeError) as error:
        raise SystemExit(str(error)) from None
    one_hot, digits, counts = make_counting_data(args.samples, config.sequence_length, config.vocab_size,
                                                 torch.Generator().manual_seed(args.seed))
    with torch.no_grad():
        logits, weights = model(one_hot)
    predicted = logits.argmax(dim=-1)
    figure = plot_counting_attention(weights, digits, predicted, counts,
                                     title=f"Counting attention ({config.activation})")
    finish_figure(figure, args.out, show=not args.no_show)
    print(f"Correct counts: {(predicted == counts).sum().item()} of {counts.numel()}")
    print(f"Saved the attention heatmap to {args.out}")
    return args.out


if __name__ == "__main__":
    main(build_parser().parse_args())
