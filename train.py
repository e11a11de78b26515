"""Train the counting model (explicit attention) and save it to results/model.pth.

    python train.py                        # the exercise's configuration, sigmoid attention: test accuracy 1.0
    python train.py --activation softmax   # the exercise's bonus question: softmax attention

Training is the exercise's: autograd on CountingModel, torch.optim.Adam, ReduceLROnPlateau on the training loss.
"""
import argparse

from lib.attention import ACTIVATIONS
from lib.cli import float_range, int_range, run_main
from lib.counting import (LIMITS, MAX_LR, CountingConfig, evaluate_counting_model, save_counting_model,
                          train_counting_model)
from lib.files import check_output

DEFAULTS = CountingConfig()
DEFAULT_OUT = "results/model.pth"


def limited(name):
    """The argparse type of an integer CountingConfig field: a whole number within ``LIMITS[name]``."""
    return int_range(*LIMITS[name])


def bounds(name):
    """``LIMITS[name]`` as help text."""
    return "from {} to {:,}".format(*LIMITS[name])


def build_parser():
    """The command-line flags; their defaults are the exercise's configuration."""
    parser = argparse.ArgumentParser(description="Train the explicit-attention model that counts how often each digit "
                                                 "occurs in a sequence; save it and print its test accuracy.")
    parser.add_argument("--sequence-length", type=limited("sequence_length"), default=DEFAULTS.sequence_length,
                        metavar="N", help=f"digits per sequence, {bounds('sequence_length')}: longer sequences do not "
                                          "train to a useful accuracy (default: %(default)s)")
    parser.add_argument("--vocab-size", type=limited("vocab_size"), default=DEFAULTS.vocab_size, metavar="N",
                        help=f"number of distinct digits 0..N-1, {bounds('vocab_size')} (default: %(default)s)")
    parser.add_argument("--hidden", type=limited("hidden"), default=DEFAULTS.hidden, metavar="N",
                        help=f"width of queries, keys and values, {bounds('hidden')} (default: %(default)s)")
    parser.add_argument("--batch-size", type=limited("batch_size"), default=DEFAULTS.batch_size, metavar="N",
                        help=f"sequences per training step, drawn fresh each step, {bounds('batch_size')} "
                             "(default: %(default)s)")
    parser.add_argument("--steps", type=limited("steps"), default=DEFAULTS.steps, metavar="N",
                        help=f"training steps, {bounds('steps')} (default: %(default)s)")
    parser.add_argument("--lr", type=float_range(0, MAX_LR, low_open=True), default=DEFAULTS.lr,
                        help=f"Adam learning rate, above 0 and at most {MAX_LR:g} (default: %(default)s)")
    parser.add_argument("--patience", type=limited("patience"), default=DEFAULTS.patience, metavar="N",
                        help=f"ReduceLROnPlateau patience in steps, on the training loss, {bounds('patience')} "
                             "(default: %(default)s)")
    parser.add_argument("--seed", type=limited("seed"), default=DEFAULTS.seed, metavar="N",
                        help=f"seed of the weights and the training data, {bounds('seed')}; the 320 test sequences "
                             "use seed+1 (default: %(default)s)")
    parser.add_argument("--activation", choices=ACTIVATIONS, default=DEFAULTS.activation,
                        help="attention weights: sigmoid per position (the exercise) or softmax over the positions "
                             "(its bonus question) (default: %(default)s)")
    parser.add_argument("--threads", type=int_range(1, LIMITS["num_threads"][1]), default=DEFAULTS.num_threads,
                        metavar="N", help="torch CPU threads while training (default: %(default)s: the model is tiny, "
                                          "and a second thread mostly waits)")
    parser.add_argument("--out", default=DEFAULT_OUT, metavar="FILE",
                        help="file to write the weights and the configuration to (default: %(default)s; an "
                             "existing FILE only with --force)")
    parser.add_argument("--force", action="store_true", help="overwrite an existing --out FILE")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


def parse_args(argv=None):
    """Parse the command line (``argv``: list of strings, None: ``sys.argv``)."""
    return build_parser().parse_args(argv)


def main(args):
    """Train with the parsed ``args``, save the model, print test loss and accuracy. Returns the test accuracy.

    Bad values raise ValueError / OSError before training starts (``run_main`` turns them into one line).
    """
    config = CountingConfig(sequence_length=args.sequence_length, vocab_size=args.vocab_size, hidden=args.hidden,
                            batch_size=args.batch_size, steps=args.steps, lr=args.lr, patience=args.patience,
                            seed=args.seed, activation=args.activation, num_threads=args.threads)
    check_output(args.out, "--out", args.force, default=DEFAULT_OUT, rerun_replaces=False)
    model, train_loss, _ = train_counting_model(config, progress=not args.no_progress)
    save_counting_model(model, config, args.out)
    test_loss, accuracy = evaluate_counting_model(model, config)
    print(f"Saved the model to {args.out}")
    print(f"Final training loss: {train_loss:.4f}")
    print(f"Test loss: {test_loss:.4f}")
    print(f"Test accuracy: {accuracy:.4f}")
    return accuracy


if __name__ == "__main__":
    run_main(main, parse_args())
