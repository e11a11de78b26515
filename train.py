"""Train the counting model (explicit attention) and save it to results/model.pth.

    python train.py                        # the exercise's configuration, sigmoid attention: test accuracy 1.0
    python train.py --activation softmax   # the exercise's bonus question: softmax attention
"""
import argparse

from lib.counting import CountingConfig, evaluate_counting_model, save_counting_model, train_counting_model

DEFAULTS = CountingConfig()


def build_parser():
    """The command-line flags; their defaults are the exercise's configuration."""
    parser = argparse.ArgumentParser(description="Train the explicit-attention model that counts how often each digit "
                                                 "occurs in a sequence; save it and print its test accuracy.")
    parser.add_argument("--sequence-length", type=int, default=DEFAULTS.sequence_length,
                        help="digits per sequence (default: %(default)s)")
    parser.add_argument("--vocab-size", type=int, default=DEFAULTS.vocab_size,
                        help="number of distinct digits, 0..vocab-size-1 (default: %(default)s)")
    parser.add_argument("--hidden", type=int, default=DEFAULTS.hidden,
                        help="width of queries, keys and values (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=DEFAULTS.batch_size,
                        help="sequences per training step, drawn fresh each step (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=DEFAULTS.steps, help="training steps (default: %(default)s)")
    parser.add_argument("--lr", type=float, default=DEFAULTS.lr, help="Adam learning rate (default: %(default)s)")
    parser.add_argument("--patience", type=int, default=DEFAULTS.patience,
                        help="ReduceLROnPlateau patience in steps, on the training loss (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=DEFAULTS.seed,
                        help="seed of the weights and the training data; the 320 test sequences use seed+1 "
                             "(default: %(default)s)")
    parser.add_argument("--activation", choices=("sigmoid", "softmax"), default=DEFAULTS.activation,
                        help="attention weights: sigmoid per position (the exercise) or softmax over the positions "
                             "(its bonus question) (default: %(default)s)")
    parser.add_argument("--out", default="results/model.pth",
                        help="where to write the weights and the configuration (default: %(default)s)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


def main(args):
    """Train with the parsed ``args``, save the model, print test loss and accuracy. Returns the test accuracy."""
    for name in ("sequence_length", "vocab_size", "hidden", "batch_size", "steps"):
        if getattr(args, name) < 1:
            raise SystemExit(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    config = CountingConfig(sequence_length=args.sequence_length, vocab_size=args.vocab_size, hidden=args.hidden,
                            batch_size=args.batch_size, steps=args.steps, lr=args.lr, patience=args.patience,
                            seed=args.seed, activation=args.activation)
    model, train_loss, _ = train_counting_model(config, progress=not args.no_progress)
    save_counting_model(model, config, args.out)
    test_loss, accuracy = evaluate_counting_model(model, config)
    print(f"Saved the model to {args.out}")
    print(f"Final training loss: {train_loss:.4f}")
    print(f"Test loss: {test_loss:.4f}")
    print(f"Test accuracy: {accuracy:.4f}")
    return accuracy


if __name__ == "__main__":
    main(build_parser().parse_args())
