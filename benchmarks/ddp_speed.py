"""Training throughput of the translator with 1 and with 2 data-parallel processes, run one after the other on this
machine: target tokens per second, and the scaling efficiency tokens/s(2) / (2 x tokens/s(1)).

    python benchmarks/ddp_speed.py                       # translation-default model, 10 timed steps per run
    python benchmarks/ddp_speed.py --steps 5 --embed-dim 128 --layers 2

Each process runs the training step of lib/training/loop.py (translation_loss with label smoothing, AdamW,
gradient clipping; DistributedDataParallel over ``gloo`` when there are 2 processes) on its own synthetic batches of
the same shape (random subword ids, ``--batch-tokens`` padded tokens per side per process, as --batch-tokens in
run_translation.py), with one torch thread per process. A few untimed warm-up steps come first. Tokens are target
tokens (the decoder's predictions), summed over the processes, as in the ``tokens_per_s`` of training's log.

On a GPU machine the same script with ``--device cuda`` (add ``--amp`` for bfloat16 autocast) measures 1 GPU; the
2-process run needs 2 GPUs (``nccl``) and is skipped on a machine with one. The load average is printed with the
figures because other jobs on the machine take cores from the processes measured.
"""
import argparse
import os
import socket
import sys
import time
from contextlib import nullcontext
from dataclasses import fields

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from anywhere

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
import torch.multiprocessing as mp  # noqa: E402

from lib.cli import int_range, run_main  # noqa: E402
from lib.translation.tokenizer import END, PAD, START, UNK  # noqa: E402
from lib.transformer import TransformerModel  # noqa: E402
from lib.training.config import TrainConfig, flag_type  # noqa: E402
from lib.training.loop import translation_loss  # noqa: E402

SETTING = {setting.name: setting for setting in fields(TrainConfig)}  # the ranges of the model's flags


def build_parser():
    """The command-line flags."""
    defaults = TrainConfig()
    parser = argparse.ArgumentParser(description="Tokens per second of translation training with 1 and 2 "
                                                 "data-parallel processes, and the scaling efficiency.")
    parser.add_argument("--steps", type=int_range(1, 10_000), default=10,
                        help="timed training steps per run (default %(default)s)")
    parser.add_argument("--warmup", type=int_range(0, 10_000), default=2,
                        help="untimed steps before timing (default %(default)s)")
    parser.add_argument("--embed-dim", type=flag_type(SETTING["embed_dim"]), default=defaults.embed_dim,
                        help="model width (default %(default)s)")
    parser.add_argument("--layers", type=flag_type(SETTING["enc_layers"]), default=defaults.enc_layers,
                        help="encoder layers and decoder layers each (default %(default)s)")
    parser.add_argument("--heads", type=flag_type(SETTING["num_heads"]), default=defaults.num_heads,
                        help="attention heads (default %(default)s)")
    parser.add_argument("--vocab-size", type=flag_type(SETTING["en_vocab_size"]), default=defaults.en_vocab_size,
                        help="subword vocabulary size of each language (default %(default)s)")
    parser.add_argument("--length", type=int_range(2, 1024), default=20,
                        help="subword tokens per sentence on each side (default %(default)s)")
    parser.add_argument("--batch-tokens", type=flag_type(SETTING["batch_tokens"]), default=defaults.batch_tokens,
                        help="padded tokens per side in each process's batch (default %(default)s)")
    parser.add_argument("--threads", type=int_range(1, 256), default=1,
                        help="torch threads per process (default %(default)s)")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="default %(default)s")
    parser.add_argument("--amp", action="store_true", help="bfloat16 autocast (for GPUs)")
    return parser


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def synthetic_batch(args, generator, device):
    """(source, decoder input, decoder target) of random subword ids: batch_tokens // (length + 1) sentences."""
    rows = max(1, args.batch_tokens // (args.length + 1))
    source = torch.randint(UNK + 1, args.vocab_size, (rows, args.length), generator=generator)
    english = torch.randint(UNK + 1, args.vocab_size, (rows, args.length), generator=generator)
    decoder_input = torch.cat([torch.full((rows, 1), START), english], dim=1)
    decoder_target = torch.cat([english, torch.full((rows, 1), END)], dim=1)
    assert not (decoder_target == PAD).any()
    return source.to(device), decoder_input.to(device), decoder_target.to(device)


def _worker(rank, world_size, port, args, results):
    """One process: the training step of lib.training.loop.train on synthetic batches; rank 0 puts
    (target tokens of all ranks, seconds) of the timed steps into ``results``."""
    torch.set_num_threads(args.threads)
    cuda = args.device == "cuda"
    device = torch.device(f"cuda:{rank}" if cuda else "cpu")
    if world_size > 1:
        dist.init_process_group("nccl" if cuda else "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                                world_size=world_size)
    torch.manual_seed(0)
    model = TransformerModel(args.vocab_size, args.vocab_size, max_len=args.length + 1, embed_dim=args.embed_dim,
                             enc_layers=args.layers, dec_layers=args.layers, num_heads=args.heads,
                             dropout=0.1).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.98), weight_decay=0.01)
    trained = model
    if world_size > 1:
        trained = torch.nn.parallel.DistributedDataParallel(model, device_ids=[rank] if cuda else None)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if args.amp else nullcontext()
    generator = torch.Generator().manual_seed(1000 + rank)
    batches = [synthetic_batch(args, generator, device) for _ in range(4)]
    tokens = 0
    for step in range(args.warmup + args.steps):
        if step == args.warmup:
            if cuda:
                torch.cuda.synchronize(device)
            if world_size > 1:
                dist.barrier()
            start = time.perf_counter()
        with autocast:
            loss, count = translation_loss(trained, *batches[step % len(batches)], label_smoothing=0.1)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        loss.item()  # wait for the step, as training's loss bookkeeping does
        if step >= args.warmup:
            tokens += count
    if world_size > 1:
        dist.barrier()
    seconds = time.perf_counter() - start
    if world_size > 1:
        dist.destroy_process_group()
    if rank == 0:
        results.put((tokens * world_size, seconds))


def measure(args, world_size):
    """Tokens per second of a run with ``world_size`` processes (started afresh, so each run imports torch)."""
    results = mp.get_context("spawn").SimpleQueue()
    mp.start_processes(_worker, args=(world_size, free_port(), args, results), nprocs=world_size,
                       start_method="spawn")
    tokens, seconds = results.get()
    return tokens / seconds, tokens, seconds


def main(args):
    """Measure 1 and 2 processes; print tokens/s of each and the scaling efficiency. Returns the efficiency (None
    when only 1 process could run)."""
    counts = [1, 2]
    if args.device == "cuda" and torch.cuda.device_count() < 2:
        counts = [1]
    rows = max(1, args.batch_tokens // (args.length + 1))
    print(f"device {args.device}, {args.threads} thread(s) per process, model embed {args.embed_dim}, "
          f"{args.layers}+{args.layers} layers, {args.heads} heads, vocab {args.vocab_size}; per process "
          f"{rows} sentences x {args.length} tokens per batch; {args.steps} timed steps after {args.warmup} warm-up; "
          f"{os.cpu_count()} CPU cores, load average before {os.getloadavg()[0]:.1f}", flush=True)
    rates = {}
    for world_size in counts:
        rate, tokens, seconds = measure(args, world_size)
        rates[world_size] = rate
        print(f"{world_size} process(es): {rate:,.0f} target tokens/s ({tokens:,} tokens in {seconds:.1f} s)",
              flush=True)
    if 2 not in rates:
        print("2 processes need 2 GPUs: skipped (this machine has fewer)")
        return None
    efficiency = rates[2] / (2 * rates[1])
    print(f"scaling efficiency tokens/s(2) / (2 x tokens/s(1)): {efficiency:.2f} "
          f"(speed-up {rates[2] / rates[1]:.2f}x); load average after {os.getloadavg()[0]:.1f}")
    return efficiency


if __name__ == "__main__":
    run_main(main, build_parser().parse_args())
