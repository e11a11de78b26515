"""Speed of ``run_translation.py --input FILE`` end to end (start-up, model loading, streaming translation), in
sentences per second, with ``--threads`` 1 and 2 (batches decoded at once, one torch thread each), on an otherwise
idle machine and beside a busy one-core job (``python -c "while True: pass"``), as when other work shares the machine.

The file holds N lines cycled from the German side of the corpus's valid split. Prints one line per run (wall
seconds, sentences per second, and the CPU seconds the run used: on a machine shared with other work, lines / CPU
seconds of a one-thread run estimates its idle speed) and the ratios 2 threads / 1 thread and busy / idle; the
script's default (MOST_DEFAULT_THREADS of lib/translation/commands.py) was chosen from them. Needs a trained
translator (default: the shipped data/translator.pth).

    python benchmarks/translate_file_speed.py [--lines 10000] [--threads 1 2] [--conditions idle busy]
"""
import argparse
import itertools
import os
import resource
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if __package__ in (None, ""):
    sys.path.insert(0, ROOT)

from lib.cli import int_range, run_main  # noqa: E402
from lib.files import check_input  # noqa: E402
from lib.translation.corpus import check_corpus, read_corpus, split_corpus  # noqa: E402
from lib.translation.translator import SHIPPED_CHECKPOINT, TRANSLATOR_HINT  # noqa: E402

SCRIPT = os.path.join(ROOT, "run_translation.py")


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int_range(1, 1_000_000), default=10000,
                        help="lines in the file (default %(default)s)")
    parser.add_argument("--threads", type=int_range(1, 256), nargs="+", default=[1, 2],
                        help="thread counts to compare (default: 1 2)")
    parser.add_argument("--conditions", nargs="+", choices=("idle", "busy"), default=["idle", "busy"],
                        help="idle: nothing else started; busy: beside a one-core busy loop (default: both)")
    parser.add_argument("--batch-size", type=int_range(1, 4096), default=64, help="run_translation.py's --batch-size")
    parser.add_argument("--checkpoint", default=SHIPPED_CHECKPOINT, help="translator checkpoint (default: shipped)")
    parser.add_argument("--corpus", default=None, help="corpus file (default: the installed Ding dictionary)")
    parser.add_argument("--corpus-format", default="ding", choices=("ding", "tsv", "iwslt"))
    return parser


def write_lines(path, count, corpus, corpus_format):
    """Write ``count`` German lines, the valid split's sentences cycled, to ``path``."""
    german = [pair.german for pair in split_corpus(read_corpus(corpus, corpus_format, sentences_only=True))["valid"]]
    if not german:
        raise ValueError("the corpus has no valid sentences to translate")
    with open(path, "w", encoding="utf-8") as file:
        for line in itertools.islice(itertools.cycle(german), count):
            file.write(line + "\n")


def run_once(path, threads, batch_size, checkpoint):
    """Wall seconds and CPU seconds that ``run_translation.py --input path`` takes, and its output lines."""
    command = [sys.executable, SCRIPT, "--input", path, "--threads", str(threads), "--batch-size", str(batch_size),
               "--checkpoint", checkpoint, "--no-progress"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS=""))
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise RuntimeError(f"run_translation.py failed: {result.stderr.strip().splitlines()[-1:]}")
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return seconds, cpu, result.stdout.splitlines()


def main(args):
    check_input(args.checkpoint, "--checkpoint", seekable=True, hint=TRANSLATOR_HINT)
    check_corpus(args.corpus, args.corpus_format)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "german.txt")
        write_lines(path, args.lines, args.corpus, args.corpus_format)
        print(f"{args.lines} lines, batch size {args.batch_size}, {os.cpu_count()} cores, load average "
              f"{os.getloadavg()[0]:.2f} at the start", flush=True)
        rates, outputs = {}, {}
        for condition in args.conditions:
            busy = (subprocess.Popen([sys.executable, "-c", "while True: pass"]) if condition == "busy" else None)
            try:
                for threads in args.threads:
                    seconds, cpu, lines = run_once(path, threads, args.batch_size, args.checkpoint)
                    if len(lines) != args.lines:
                        raise RuntimeError(f"{len(lines)} output lines for {args.lines} input lines")
                    rates[condition, threads] = args.lines / seconds
                    outputs[condition, threads] = lines
                    print(f"{condition:4s} {threads} thread(s): {seconds:6.1f} s, "
                          f"{rates[condition, threads]:6.0f} sentences/s; {cpu:6.1f} CPU s", flush=True)
            finally:
                if busy is not None:
                    busy.kill()
                    busy.wait()
        first, *others = args.threads
        for condition in args.conditions:
            for threads in others:
                print(f"{condition}: {threads} threads / {first} thread(s): "
                      f"{rates[condition, threads] / rates[condition, first]:.2f}x the sentences/s")
        if {"idle", "busy"} <= set(args.conditions):
            for threads in args.threads:
                print(f"{threads} thread(s): busy / idle: {rates['busy', threads] / rates['idle', threads]:.2f}x")
        same = all(lines == outputs[next(iter(outputs))] for lines in outputs.values())
        print(f"Same translations in every run: {'yes' if same else 'no'}")


if __name__ == "__main__":
    run_main(main, build_parser().parse_args())
