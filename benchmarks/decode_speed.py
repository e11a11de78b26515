"""Decoding speed: batched greedy decoding with cached keys and values versus the exercise's way (one sentence at a
time, a full forward pass over the whole prefix at every step), on the German side of the test split.

Checks first that both give the same token ids on the baseline sentences, then prints sentences per second of each
and their ratio (goal: at least 50). Needs a trained translator checkpoint (default data/translator.pth).

    python benchmarks/decode_speed.py [--checkpoint PATH] [--baseline-sentences 100]
"""
import argparse
import os
import sys
import time

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

from lib.corpus import read_corpus, split_corpus  # noqa: E402
from lib.decoding import greedy_decode, naive_greedy_decode  # noqa: E402
from lib.translation import SHIPPED_CHECKPOINT, Translator  # noqa: E402

GOAL = 50


def cached_decode(translator, texts, batch_size):
    """Greedy ids of every text, decoded in batches of similar token length; returned in the order of ``texts``."""
    lengths = [len(ids) for ids in translator.de_vocab.encode(texts)]
    order = sorted(range(len(texts)), key=lengths.__getitem__)
    results = [None] * len(texts)
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        source = translator.source_ids([texts[i] for i in chunk], warn=False)
        for i, ids in zip(chunk, greedy_decode(translator.model, source)):
            results[i] = ids
    return results


def timed(function, *args):
    started = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - started


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", default=SHIPPED_CHECKPOINT, help="translator checkpoint (default %(default)s)")
    parser.add_argument("--baseline-sentences", type=int, default=100,
                        help="sentences decoded the exercise's way, and compared (default %(default)s)")
    parser.add_argument("--batch-size", type=int, default=256, help="batch size of cached decoding")
    parser.add_argument("--corpus", default=None, help="corpus file (default: the installed Ding dictionary)")
    parser.add_argument("--corpus-format", default="ding", choices=("ding", "tsv", "iwslt"))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    args = parser.parse_args(argv)
    if not os.path.isfile(args.checkpoint):
        sys.exit(f"No checkpoint at {args.checkpoint}: this benchmark needs a trained translator. Pass "
                 f"--checkpoint PATH (e.g. results/translation/best.pth) or train one with "
                 f"'python run_translation.py --train'.")
    if args.threads:
        torch.set_num_threads(args.threads)
    translator = Translator.load(args.checkpoint, args.device)
    texts = [pair.german for pair in split_corpus(read_corpus(args.corpus, args.corpus_format))["test"]]
    baseline_texts = texts[:args.baseline_sentences]
    config = translator.model.config()
    print(f"{args.checkpoint}: embed {config['embed_dim']}, {config['enc_layers']}+{config['dec_layers']} layers, "
          f"vocabularies {config['de_vocab_size']}/{config['en_vocab_size']}; {len(texts)} test sentences; "
          f"{torch.get_num_threads()} threads on {args.device}", flush=True)

    cached_decode(translator, texts[:8], args.batch_size)  # warm-up
    naive_greedy_decode(translator.model, translator.source_ids(texts[:1], warn=False))
    cached, cached_seconds = timed(cached_decode, translator, texts, args.batch_size)
    naive, naive_seconds = timed(naive_greedy_decode, translator.model,
                                 translator.source_ids(baseline_texts, warn=False))

    differing = [i for i, (a, b) in enumerate(zip(cached, naive)) if a != b]
    print(f"identical ids on the first {len(naive)} sentences: "
          + ("yes" if not differing else f"NO, {len(differing)} differ (first: sentence {differing[0] + 1})"))
    cached_rate, naive_rate = len(texts) / cached_seconds, len(naive) / naive_seconds
    print(f"cached batched greedy: {len(texts)} sentences in {cached_seconds:.2f} s = {cached_rate:.1f} sentences/s")
    print(f"naive one at a time:   {len(naive)} sentences in {naive_seconds:.2f} s = {naive_rate:.2f} sentences/s")
    ratio = cached_rate / naive_rate
    print(f"speed-up {ratio:.1f}x (goal >= {GOAL}x: {'met' if ratio >= GOAL else 'NOT met'})")
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
