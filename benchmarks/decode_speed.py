"""Decoding speed: batched greedy decoding with cached keys and values versus one sentence at a time with a full
forward pass at every step, on the German side of the test split. Two such baselines are timed:

- the exercise's way (the goal's baseline): one-hot inputs padded to the model's full lengths, as the exercise's
  ``forward`` takes them (``exercise_greedy_decode``);
- a leaner loop on token ids over the prefix only (``naive_greedy_decode``), to show what caching and batching
  alone are worth.

Checks that all three give the same token ids on the baseline sentences, then prints sentences per second of each
and the ratios (goal: at least 50 against the exercise's way), and the speed of cached beam search (--beam, default
4) for reference. Needs a trained translator checkpoint (default data/translator.pth).

    python benchmarks/decode_speed.py [--checkpoint PATH] [--baseline-sentences 100] [--threads 1]
"""
import argparse
import os
import sys
import time

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

from lib.cli import int_range, run_main, set_threads  # noqa: E402
from lib.files import check_input  # noqa: E402
from lib.translation.corpus import check_corpus, read_corpus, split_corpus  # noqa: E402
from lib.translation.decoding import (BEAM_RANGE, beam_search, exercise_greedy_decode, greedy_decode,  # noqa: E402
                                      naive_greedy_decode)
from lib.translation.translator import SHIPPED_CHECKPOINT, TRANSLATOR_HINT, Translator  # noqa: E402

GOAL = 50


def cached_decode(translator, texts, batch_size, beam=1):
    """Ids of every text (greedy, or beam search with ``beam`` > 1), decoded in batches of similar token length;
    returned in the order of ``texts``."""
    lengths = [len(ids) for ids in translator.de_vocab.encode(texts)]
    order = sorted(range(len(texts)), key=lengths.__getitem__)
    results = [None] * len(texts)
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        source = translator.source_ids([texts[i] for i in chunk], warn=False)
        decoded = greedy_decode(translator.model, source) if beam == 1 else beam_search(translator.model, source, beam)
        for i, ids in zip(chunk, decoded):
            results[i] = ids
    return results


def timed(function, *args):
    started = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - started


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", default=SHIPPED_CHECKPOINT, help="translator checkpoint (default %(default)s)")
    parser.add_argument("--baseline-sentences", type=int_range(1, 100_000), default=100,
                        help="sentences decoded one at a time by each baseline, and compared (default %(default)s)")
    parser.add_argument("--batch-size", type=int_range(1, 4096), default=256, help="batch size of cached decoding")
    parser.add_argument("--beam", type=int_range(2, BEAM_RANGE[1]), default=4,
                        help="beam width of the beam search line (default 4)")
    parser.add_argument("--corpus", default=None, help="corpus file (default: the installed Ding dictionary)")
    parser.add_argument("--corpus-format", default="ding", choices=("ding", "tsv", "iwslt"))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int_range(1, 256), default=None,
                        help="torch threads (default: torch's choice)")
    return parser


def main(args):
    check_input(args.checkpoint, "--checkpoint", seekable=True, hint=TRANSLATOR_HINT)
    check_corpus(args.corpus, args.corpus_format)
    set_threads(args.threads)
    translator = Translator.load(args.checkpoint, args.device)
    texts = [pair.german for pair in split_corpus(read_corpus(args.corpus, args.corpus_format))["test"]]
    baseline_texts = texts[:args.baseline_sentences]
    config = translator.model.config()
    print(f"{args.checkpoint}: embed {config['embed_dim']}, {config['enc_layers']}+{config['dec_layers']} layers, "
          f"vocabularies {config['de_vocab_size']}/{config['en_vocab_size']}; {len(texts)} test sentences; "
          f"{torch.get_num_threads()} threads on {args.device}", flush=True)

    cached_decode(translator, texts[:8], args.batch_size)  # warm-up
    warm_up = translator.source_ids(texts[:1], warn=False)
    naive_greedy_decode(translator.model, warm_up)
    exercise_greedy_decode(translator.model, warm_up, max_steps=2)
    cached, cached_seconds = timed(cached_decode, translator, texts, args.batch_size)
    _, beam_seconds = timed(cached_decode, translator, texts, args.batch_size, args.beam)
    baseline_source = translator.source_ids(baseline_texts, warn=False)
    naive, naive_seconds = timed(naive_greedy_decode, translator.model, baseline_source)
    exercise, exercise_seconds = timed(exercise_greedy_decode, translator.model, baseline_source)

    differing = [i for i, (a, b, c) in enumerate(zip(cached, naive, exercise)) if not a == b == c]
    print(f"identical ids on the first {len(naive)} sentences: "
          + ("yes" if not differing else f"NO, {len(differing)} differ (first: sentence {differing[0] + 1})"))
    cached_rate = len(texts) / cached_seconds
    exercise_rate, naive_rate = len(exercise) / exercise_seconds, len(naive) / naive_seconds
    print(f"cached batched greedy:         {len(texts)} sentences in {cached_seconds:.2f} s = "
          f"{cached_rate:.1f} sentences/s")
    print(f"cached batched beam {args.beam}:         {len(texts)} sentences in {beam_seconds:.2f} s = "
          f"{len(texts) / beam_seconds:.1f} sentences/s")
    print(f"exercise's way (one-hot):      {len(exercise)} sentences in {exercise_seconds:.2f} s = "
          f"{exercise_rate:.2f} sentences/s")
    print(f"lean one at a time (ids):      {len(naive)} sentences in {naive_seconds:.2f} s = "
          f"{naive_rate:.2f} sentences/s")
    print(f"speed-up over the lean loop: {cached_rate / naive_rate:.1f}x")
    ratio = cached_rate / exercise_rate
    print(f"speed-up over the exercise's way {ratio:.1f}x (goal >= {GOAL}x: {'met' if ratio >= GOAL else 'NOT met'})")
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(run_main(main, build_parser().parse_args()))
