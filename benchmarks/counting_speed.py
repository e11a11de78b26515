"""Wall time of the exercise's counting loop against this library's (``python train.py``), one after the other.

    python benchmarks/counting_speed.py              # full runs, 2500 steps each: both times, accuracies, the ratio
    python benchmarks/counting_speed.py --repeat 3   # three pairs, interleaved; the median ratio is the figure

The exercise's loop (``exercise_counting_loop`` below) pre-generates steps * batch_size (640,000) samples and reads
them through a DataLoader one sample at a time. Ours (``lib.counting.train_counting_model``) keeps the model,
autograd, ``torch.optim.Adam`` and ReduceLROnPlateau, and draws the batches many steps at a time, on one thread. Both
train the same CountingModel with the same loss. The goal is ours / exercise <= 0.3 at test accuracy 1.0.
"""
import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from anywhere

import torch  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

from lib.cli import int_range, run_main  # noqa: E402
from lib.counting import (CountingConfig, CountingModel, counting_loss, evaluate_counting_model,  # noqa: E402
                          make_counting_data, train_counting_model)


def exercise_counting_loop(config=CountingConfig(), progress=True):
    """The exercise's own loop, the speed baseline: a DataLoader reading one sample at a time from a pre-generated
    dataset of ``steps * batch_size`` samples, autograd, Adam, ReduceLROnPlateau. Returns the trained model."""
    torch.manual_seed(config.seed)
    one_hot, _, counts = make_counting_data(config.steps * config.batch_size, config.sequence_length,
                                            config.vocab_size)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(one_hot, counts),
                                         batch_size=config.batch_size, shuffle=True)
    model = CountingModel(config.vocab_size, config.sequence_length, config.hidden, activation=config.activation)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, patience=config.patience)
    for batch_x, batch_counts in tqdm(loader, desc="exercise loop", disable=not progress):
        logits, _ = model(batch_x)
        loss = counting_loss(logits, batch_counts)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step(loss.item())
    return model


def build_parser():
    """The command-line flags."""
    parser = argparse.ArgumentParser(description="Time the exercise's counting loop and ours; print the ratio.")
    parser.add_argument("--steps", type=int_range(1, 100_000), default=CountingConfig.steps,
                        help="training steps of each loop (default: %(default)s, the exercise's)")
    parser.add_argument("--exercise-threads", type=int_range(0, 256), default=0,
                        help="torch threads for the exercise's loop; 0 keeps torch's default, as the exercise ran "
                             "(default: %(default)s)")
    parser.add_argument("--repeat", type=int_range(1, 20), default=1,
                        help="pairs of runs, interleaved; prints each ratio and their median (default: %(default)s)")
    return parser


def time_pair(config, exercise_threads):
    """Run the exercise's loop, then ours; print both and the ratio. Returns the ratio ours / exercise."""
    default_threads = torch.get_num_threads()
    if exercise_threads > 0:
        torch.set_num_threads(exercise_threads)
    used_threads = torch.get_num_threads()
    start = time.perf_counter()
    exercise_model = exercise_counting_loop(config, progress=False)
    exercise_seconds = time.perf_counter() - start
    torch.set_num_threads(default_threads)
    _, exercise_accuracy = evaluate_counting_model(exercise_model, config)
    print(f"exercise loop (DataLoader, {config.steps * config.batch_size:,} pre-generated samples, "
          f"{used_threads} torch threads): {exercise_seconds:.1f} s, test accuracy {exercise_accuracy:.4f}")

    start = time.perf_counter()
    _, _, accuracy = train_counting_model(config, progress=False)
    seconds = time.perf_counter() - start
    print(f"our loop (autograd, torch.optim.Adam, batches drawn many steps at a time, "
          f"{config.num_threads or default_threads} torch thread(s)): {seconds:.1f} s, test accuracy {accuracy:.4f}")
    ratio = seconds / exercise_seconds
    print(f"ratio ours/exercise: {ratio:.3f} (goal: at most 0.3)", flush=True)
    return ratio


def main(args):
    """Time ``args.repeat`` pairs of runs. Returns the median ratio ours / exercise."""
    config = CountingConfig(steps=args.steps)
    ratios = [time_pair(config, args.exercise_threads) for _ in range(args.repeat)]
    median = statistics.median(ratios)
    if args.repeat > 1:
        print(f"median ratio of {args.repeat} pairs: {median:.3f} ({', '.join(f'{r:.3f}' for r in ratios)})")
    return median


if __name__ == "__main__":
    run_main(main, build_parser().parse_args())
