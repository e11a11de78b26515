"""Training speed and memory: token-id inputs (embedding lookups, fused attention without weights) versus the
exercise's one-hot float inputs, same model, same random batches; and the exercise's whole input pipeline, one-hot
tensors of fixed shape (batch, max_len, vocab) padded to ``max_len`` whatever the sentence lengths, against ours,
token ids in batches as long as their longest sentence (length-bucketed); and token ids under bfloat16 autocast
against float32. Tokens per second count real (non-padding) target tokens in every variant.

Each variant runs in its own subprocess, so that its peak resident memory (``ru_maxrss``) is its own. Prints
target tokens per second and peak memory of both, and the speed ratio (goal: at least 2).

    python benchmarks/train_speed.py [--steps 3] [--batch 160 --source-length 12 --target-length 13]
"""
import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import fields

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from lib.translation.tokenizer import PAD, START  # noqa: E402
from lib.transformer import TransformerModel  # noqa: E402
from lib.cli import int_range, run_main  # noqa: E402
from lib.training.config import TrainConfig, flag_type, native_bfloat16  # noqa: E402

GOAL = 2.0
VARIANTS = ("ids", "ids-bfloat16", "one-hot", "one-hot-padded")


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def run_variant(args):
    """Train ``args.steps`` steps (after ``args.warmup`` untimed ones) with one input kind; returns a result dict."""
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    max_len = max(args.source_length, args.target_length - 1, TrainConfig.max_len)
    model = TransformerModel(args.en_vocab, args.de_vocab, max_len=max_len, embed_dim=args.embed_dim,
                             enc_layers=args.enc_layers, dec_layers=args.dec_layers, num_heads=args.heads,
                             dropout=args.dropout).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    generator = torch.Generator().manual_seed(1)
    source = torch.randint(4, args.de_vocab, (args.batch, args.source_length), generator=generator)
    target = torch.randint(4, args.en_vocab, (args.batch, args.target_length), generator=generator)
    decoder_input = torch.cat([torch.full((args.batch, 1), START), target[:, :-1]], dim=1)
    if args.variant == "one-hot-padded":  # the exercise's fixed shapes: every batch padded to max_len positions
        source = F.pad(source, (0, max_len - args.source_length), value=PAD)
        decoder_input = F.pad(decoder_input, (0, max_len + 1 - args.target_length), value=PAD)
        target = F.pad(target, (0, max_len + 1 - args.target_length), value=PAD)
    rss_before = peak_rss_mb()

    autocast = (torch.autocast("cpu", dtype=torch.bfloat16) if args.variant == "ids-bfloat16"
                else contextlib.nullcontext())

    def step():
        if args.variant.startswith("ids"):
            with autocast:  # bfloat16 for the forward pass; the loss below in float32, as --amp trains
                logits, _ = model(source, decoder_input, src_padding_mask=source == PAD, need_weights=False)
            logits = logits.float()
        else:  # the exercise's way: one-hot floats through the input dense layers
            logits, _ = model(F.one_hot(source, args.de_vocab).float(), F.one_hot(decoder_input, args.en_vocab).float())
        loss = F.cross_entropy(logits.reshape(-1, args.en_vocab), target.reshape(-1), ignore_index=PAD)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(args.warmup):
        step()
    started = time.perf_counter()
    for _ in range(args.steps):
        step()
    seconds = time.perf_counter() - started
    real_tokens = int((target != PAD).sum())
    return {"variant": args.variant, "tokens_per_s": args.steps * real_tokens / seconds,
            "seconds_per_step": seconds / args.steps, "peak_rss_mb": peak_rss_mb(), "rss_before_mb": rss_before,
            "threads": torch.get_num_threads(),
            "parameters": sum(parameter.numel() for parameter in model.parameters())}


def build_parser():
    """The command-line flags; the model's take the ranges of the training flags of the same settings."""
    defaults = TrainConfig()
    setting = {field.name: field for field in fields(TrainConfig)}
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for flag, name in (("--de-vocab", "de_vocab_size"), ("--en-vocab", "en_vocab_size"), ("--embed-dim", "embed_dim"),
                       ("--enc-layers", "enc_layers"), ("--dec-layers", "dec_layers"), ("--heads", "num_heads"),
                       ("--dropout", "dropout")):
        parser.add_argument(flag, type=flag_type(setting[name]), default=getattr(defaults, name),
                            help=f"{setting[name].metadata['help']} (default %(default)s)")
    parser.add_argument("--batch", type=int_range(1, 4096), default=160,
                        help="sentences per batch (default %(default)s)")
    parser.add_argument("--source-length", type=int_range(1, 1024), default=12, help="source tokens per sentence")
    parser.add_argument("--target-length", type=int_range(2, 1024), default=13, help="decoder positions (END included)")
    parser.add_argument("--steps", type=int_range(1, 10_000), default=3,
                        help="timed steps per variant (default %(default)s)")
    parser.add_argument("--warmup", type=int_range(0, 10_000), default=1,
                        help="untimed steps first (default %(default)s)")
    parser.add_argument("--threads", type=int_range(0, 256), default=0, help="torch threads (0: torch's choice)")
    parser.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)  # set in the subprocesses
    return parser


def main(args, argv=None):
    """Run each variant in a process of its own (the flags ``argv``, default sys.argv, forwarded) and print the
    table; with --variant, run that one and print its JSON."""
    if args.variant:
        print(json.dumps(run_variant(args)))
        return 0

    forwarded = list(argv if argv is not None else sys.argv[1:])
    results = {}
    for variant in VARIANTS:
        process = subprocess.run([sys.executable, os.path.abspath(__file__), *forwarded, "--variant", variant],
                                 capture_output=True, text=True)
        if process.returncode:
            sys.stderr.write(process.stderr)
            sys.exit(f"the {variant} run failed (exit status {process.returncode})")
        results[variant] = json.loads(process.stdout.strip().splitlines()[-1])
    ids, one_hot, padded = results["ids"], results["one-hot"], results["one-hot-padded"]
    bfloat16 = results["ids-bfloat16"]
    print(f"model: vocabularies {args.de_vocab}/{args.en_vocab}, embed {args.embed_dim}, "
          f"{args.enc_layers}+{args.dec_layers} layers, {args.heads} heads, {ids['parameters']:,} parameters; "
          f"batch {args.batch} x {args.source_length} source, {args.target_length} target tokens; "
          f"{args.steps} timed steps after {args.warmup}; {ids['threads']} threads")
    for variant, result in results.items():
        print(f"{variant:14s} {result['tokens_per_s']:9.0f} target tokens/s  {result['seconds_per_step']:6.2f} s/step  "
              f"peak memory {result['peak_rss_mb']:7.0f} MB (before training {result['rss_before_mb']:.0f} MB)")
    native = "native" if native_bfloat16("cpu") else "emulated: no avx512_bf16 or AMX"
    print(f"bfloat16 autocast vs float32 (ids): {bfloat16['tokens_per_s'] / ids['tokens_per_s']:.2f}x the tokens/s "
          f"(bfloat16 on this CPU: {native})")
    ratio = ids["tokens_per_s"] / one_hot["tokens_per_s"]
    print(f"ids vs one-hot, same shapes: speed-up {ratio:.2f}x; peak memory "
          f"{one_hot['peak_rss_mb'] / ids['peak_rss_mb']:.2f}x lower with ids")
    ratio = ids["tokens_per_s"] / padded["tokens_per_s"]
    print(f"ids vs the exercise's one-hot pipeline (padded to max_len {max(args.source_length, TrainConfig.max_len)}): "
          f"speed-up {ratio:.2f}x (goal >= {GOAL}x: {'met' if ratio >= GOAL else 'NOT met'}); peak memory "
          f"{padded['peak_rss_mb'] / ids['peak_rss_mb']:.2f}x lower with ids")
    return 0


if __name__ == "__main__":
    run_main(main, build_parser().parse_args())
