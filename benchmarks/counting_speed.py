"""Wall time of the exercise's counting loop against this library's, run one after the other on this machine.

    python benchmarks/counting_speed.py            # full runs, 2500 steps each; prints both times and the ratio

The exercise's loop pre-generates steps * batch_size (640,000) samples and reads them through a DataLoader one sample
at a time, with autograd and torch.optim.Adam; ours draws batches 100 steps at a time, computes the loss and gradients
in closed form from the digit counts (lib/counting_gradients.py) and applies Adam to one flat tensor, on one thread.
The goal is ours / exercise <= 0.2.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from anywhere

import torch  # noqa: E402

from lib.counting import (CountingConfig, evaluate_counting_model, exercise_counting_loop,  # noqa: E402
                          train_counting_model)


def build_parser():
    """The command-line flags."""
    parser = argparse.ArgumentParser(description="Time the exercise's counting loop and ours; print the ratio.")
    parser.add_argument("--steps", type=int, default=CountingConfig.steps,
                        help="training steps of each loop (default: %(default)s, the exercise's)")
    parser.add_argument("--exercise-threads", type=int, default=0,
                        help="torch threads for the exercise's loop; 0 keeps torch's default, as the exercise ran "
                             "(default: %(default)s)")
    return parser


def main(args):
    """Run both loops, print their wall times and test accuracies and the ratio. Returns the ratio."""
    config = CountingConfig(steps=args.steps)
    default_threads = torch.get_num_threads()
    if args.exercise_threads > 0:
        torch.set_num_threads(args.exercise_threads)
    exercise_threads = torch.get_num_threads()
    start = time.perf_counter()
    exercise_model = exercise_counting_loop(config, progress=False)
    exercise_seconds = time.perf_counter() - start
    torch.set_num_threads(default_threads)
    _, exercise_accuracy = evaluate_counting_model(exercise_model, config)
    print(f"exercise loop (DataLoader, {config.steps * config.batch_size:,} pre-generated samples, "
          f"{exercise_threads} torch threads): {exercise_seconds:.1f} s, test accuracy {exercise_accuracy:.4f}")

    start = time.perf_counter()
    _, _, accuracy = train_counting_model(config, progress=False)
    seconds = time.perf_counter() - start
    print(f"our loop (batches drawn on the fly, {config.num_threads or default_threads} torch thread(s)): "
          f"{seconds:.1f} s, test accuracy {accuracy:.4f}")
    ratio = seconds / exercise_seconds
    print(f"ratio ours/exercise: {ratio:.3f} (goal: at most 0.2)")
    return ratio


if __name__ == "__main__":
    main(build_parser().parse_args())
