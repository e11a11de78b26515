"""Training the German-English translator: data preparation, length-bucketed batches, the training loop with
periodic validation (loss, BLEU, chrF), atomic checkpoints, resuming, and torch.distributed data parallelism.

Launched with ``torchrun`` (RANK / WORLD_SIZE in the environment) it trains with DistributedDataParallel: ``gloo`` on
the CPU, ``nccl`` on GPUs; every rank builds the same deterministic batches and takes every world_size-th one; rank 0
alone validates, writes checkpoints, logs and shows progress.
"""
import json
import math
import os
import random
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, fields

import torch
import torch.distributed as dist
import torch.nn.functional as F
from tqdm.auto import tqdm

from lib.checkpoint import load_checkpoint, save_atomic
from lib.corpus import read_corpus, split_corpus
from lib.tokenizer import END, PAD, START, Vocabulary
from lib.transformer import TransformerModel
from lib.translation import Translator


LR_SCHEDULES = ("inverse-sqrt", "linear")


@dataclass
class TrainConfig:
    """Everything a training run depends on; stored in its checkpoints."""
    corpus: str = None
    corpus_format: str = "ding"
    out_dir: str = "results/translation"
    de_vocab_size: int = 8000
    en_vocab_size: int = 6000
    max_len: int = 48
    embed_dim: int = 256
    enc_layers: int = 3
    dec_layers: int = 3
    num_heads: int = 4
    dropout: float = 0.1
    batch_tokens: int = 2500
    lr: float = 1e-3
    warmup_steps: int = 400
    lr_schedule: str = "inverse-sqrt"
    weight_decay: float = 0.01
    label_smoothing: float = 0.1
    clip_norm: float = 1.0
    sentence_repeats: int = 2
    phrases_per_epoch: int = 40000
    max_steps: int = 100000
    max_minutes: float = 0.0
    eval_every: int = 250
    eval_sentences: int = 500
    keep_snapshots: int = 5
    seed: int = 0
    device: str = "cpu"
    amp: bool = False
    compile: bool = False
    init_from: str = None

    def __post_init__(self):
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}")


@dataclass
class Distributed:
    """This process's place in a (possibly single-process) run."""
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self):
        return self.rank == 0


def init_distributed(device):
    """Join the process group when launched by torchrun; ``gloo`` on the CPU, ``nccl`` on CUDA."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return Distributed()
    place = Distributed(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", 0)))
    if not dist.is_initialized():
        if device.startswith("cuda"):
            torch.cuda.set_device(place.local_rank)
        dist.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo")
    return place


# ---- data -------------------------------------------------------------------------------------------------------


@dataclass
class PreparedData:
    """Vocabularies and tokenized pairs: sentences (always used) and phrases (sampled each epoch) for training, and
    the validation pairs (tokenized once, for the validation loss)."""
    de_vocab: Vocabulary
    en_vocab: Vocabulary
    splits: dict
    train_sentences: list
    train_phrases: list
    valid_examples: list


def _fits(example, max_len):
    return 0 < len(example[0]) <= max_len and 0 < len(example[1]) <= max_len


def prepare_data(config, vocabularies=None):
    """Read and split the corpus, train (or reuse) the vocabularies, tokenize the training pairs."""
    splits = split_corpus(read_corpus(config.corpus, config.corpus_format))
    sentences = [pair for pair in splits["train"] if pair.sentence]
    phrases = [pair for pair in splits["train"] if not pair.sentence]
    if vocabularies is None:
        sample = random.Random(config.seed).sample(phrases, min(len(phrases), 100000))
        de_vocab = Vocabulary.train([pair.german for pair in sentences + sample], config.de_vocab_size)
        en_vocab = Vocabulary.train([pair.english for pair in sentences + sample], config.en_vocab_size)
    else:
        de_vocab, en_vocab = vocabularies

    def tokenize(pairs):
        examples = zip(de_vocab.encode([pair.german for pair in pairs]),
                       en_vocab.encode([pair.english for pair in pairs]))
        return [example for example in examples if _fits(example, config.max_len)]
    return PreparedData(de_vocab, en_vocab, splits, tokenize(sentences), tokenize(phrases), tokenize(splits["valid"]))


def epoch_batches(data, config, epoch):
    """The batches of one epoch, the same on every run and rank: sentences repeated ``sentence_repeats`` times plus
    ``phrases_per_epoch`` phrases drawn for this epoch, sorted by length into batches of about ``batch_tokens``
    padded tokens per side, in a shuffled order. Returns a list of lists of (german ids, english ids)."""
    rng = random.Random(config.seed * 100003 + epoch)
    examples = data.train_sentences * config.sentence_repeats
    examples += rng.sample(data.train_phrases, min(config.phrases_per_epoch, len(data.train_phrases)))
    keys = [(len(target), len(source), rng.random()) for source, target in examples]
    order = sorted(range(len(examples)), key=keys.__getitem__)
    batches, batch, longest = [], [], 0
    for index in order:
        source, target = examples[index]
        length = max(len(source), len(target) + 1)
        if batch and max(longest, length) * (len(batch) + 1) > config.batch_tokens:
            batches.append(batch)
            batch, longest = [], 0
        batch.append(examples[index])
        longest = max(longest, length)
    if batch:
        batches.append(batch)
    rng.shuffle(batches)
    return batches


def collate(batch, device):
    """List of (german ids, english ids) -> (source (B, S), decoder input (B, T + 1), decoder target (B, T + 1))."""
    source_length = max(len(source) for source, _ in batch)
    target_length = max(len(target) for _, target in batch) + 1
    source = torch.full((len(batch), source_length), PAD, dtype=torch.long)
    decoder_input = torch.full((len(batch), target_length), PAD, dtype=torch.long)
    decoder_target = torch.full((len(batch), target_length), PAD, dtype=torch.long)
    for row, (german, english) in enumerate(batch):
        source[row, :len(german)] = torch.tensor(german)
        decoder_input[row, :len(english) + 1] = torch.tensor([START] + english)
        decoder_target[row, :len(english) + 1] = torch.tensor(english + [END])
    return source.to(device), decoder_input.to(device), decoder_target.to(device)


def translation_loss(model, source, decoder_input, decoder_target, label_smoothing=0.0):
    """Mean cross-entropy per target token (padding ignored). Returns (loss, number of target tokens)."""
    logits, _ = model(source, decoder_input, src_padding_mask=source == PAD, need_weights=False)
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), decoder_target.reshape(-1),
                           ignore_index=PAD, label_smoothing=label_smoothing)
    return loss, int((decoder_target != PAD).sum())


def learning_rate(step, config):
    """Linear warm-up to ``lr`` over ``warmup_steps``, then ``config.lr_schedule``: 'inverse-sqrt' decay
    (lr * sqrt(warmup_steps / step)), or 'linear' decay that reaches 0 at ``max_steps`` (a run that anneals)."""
    step = max(step, 1)
    warmup = step / config.warmup_steps if config.warmup_steps > 0 else 1.0
    if config.lr_schedule == "linear":
        remaining = (config.max_steps - step) / max(config.max_steps - config.warmup_steps, 1)
        return config.lr * max(min(warmup, remaining), 0.0)
    return config.lr * min(warmup, math.sqrt(max(config.warmup_steps, 1) / step))


# ---- validation -------------------------------------------------------------------------------------------------


@torch.no_grad()
def validation_loss(model, data, config, device):
    """Mean token cross-entropy (no label smoothing) on the validation split."""
    examples = data.valid_examples
    model.eval()
    total, tokens = 0.0, 0
    for start in range(0, len(examples), 128):
        loss, count = translation_loss(model, *collate(examples[start:start + 128], device))
        total, tokens = total + loss.item() * count, tokens + count
    model.train()
    return total / max(tokens, 1)


def validate(model, data, config, device):
    """Validation loss, and BLEU / chrF of greedy translations of the first ``eval_sentences`` valid pairs."""
    if not data.splits["valid"]:
        raise ValueError("the corpus has no validation sentences: it needs full sentences (a few hundred or more) "
                         "so that about 5% of them are held out")
    loss = validation_loss(model, data, config, device)
    translator = Translator(model, data.de_vocab, data.en_vocab)
    bleu, chrf, _ = translator.evaluate(data.splits["valid"][:config.eval_sentences])
    model.train()
    return {"valid_loss": round(loss, 4), "valid_bleu": round(bleu, 2), "valid_chrf": round(chrf, 2)}


# ---- the training loop ------------------------------------------------------------------------------------------


# What a resumed run may change: its length and devices, and the regularisation and data mix (not the model's shape,
# its vocabularies, the corpus or the learning-rate schedule).
RESUMABLE_CHANGES = ("max_steps", "max_minutes", "eval_every", "eval_sentences", "keep_snapshots", "device", "amp",
                     "compile", "out_dir", "dropout", "label_smoothing", "clip_norm", "batch_tokens",
                     "sentence_repeats", "phrases_per_epoch")


def save_snapshot(translator, out_dir, step, keep):
    """Write ``out_dir/snapshots/step<step>.pth`` and delete all but the ``keep`` newest snapshots (none kept when
    ``keep`` is 0). Returns the paths kept, oldest first; average them with ``run_translation.py --average``."""
    folder = os.path.join(out_dir, "snapshots")
    os.makedirs(folder, exist_ok=True)
    if keep > 0:
        translator.save(os.path.join(folder, f"step{step:07d}.pth"))
    names = sorted(name for name in os.listdir(folder) if name.startswith("step") and name.endswith(".pth"))
    stale = len(names) - keep if keep > 0 else len(names)
    for name in names[:max(stale, 0)]:
        os.remove(os.path.join(folder, name))
    return [os.path.join(folder, name) for name in names[max(stale, 0):]]


def _config_from(saved, overrides):
    config = TrainConfig(**{field.name: saved[field.name] for field in fields(TrainConfig) if field.name in saved})
    for name in RESUMABLE_CHANGES:
        if name in overrides:
            setattr(config, name, overrides[name])
    return config


def train(config, resume=False, progress=True, overrides=None):
    """Train (or, with ``resume``, continue from ``out_dir/last.pth``) until ``max_steps`` or ``max_minutes``.

    ``config.init_from`` (a translator checkpoint such as data/translator.pth) starts a new run from its weights,
    vocabularies and shape, with a fresh optimizer: how training continues where only that file survives.
    A file named STOP in ``out_dir`` ends the run gracefully (validated and saved) within 10 steps.
    Writes ``out_dir/last.pth`` (everything needed to resume), ``out_dir/best.pth`` (the translator with the best
    validation BLEU), the ``keep_snapshots`` latest validated translators in ``out_dir/snapshots/`` (for checkpoint
    averaging) and ``out_dir/log.jsonl``. Returns the list of validation records.
    """
    place = init_distributed(config.device)
    last_path = os.path.join(config.out_dir, "last.pth")
    state = None
    if resume:
        state = load_checkpoint(last_path, "Start a new run without --resume.")
        config = _config_from(state["config"], overrides or asdict(config))
    device = torch.device(f"cuda:{place.local_rank}" if config.device.startswith("cuda") and place.world_size > 1
                          else config.device)
    torch.manual_seed(config.seed)
    vocabularies, initial = None, None
    if state is not None:
        vocabularies = (Vocabulary.from_tensor(state["de_vocab"]), Vocabulary.from_tensor(state["en_vocab"]))
    elif config.init_from:  # a new run that starts from a translator's weights and vocabularies
        initial = Translator.load(config.init_from)
        vocabularies = (initial.de_vocab, initial.en_vocab)
        for name in ("max_len", "embed_dim", "enc_layers", "dec_layers", "num_heads"):
            setattr(config, name, getattr(initial.model, name))
    data = prepare_data(config, vocabularies)
    model = TransformerModel(len(data.en_vocab), len(data.de_vocab), max_len=config.max_len,
                             embed_dim=config.embed_dim, enc_layers=config.enc_layers, dec_layers=config.dec_layers,
                             num_heads=config.num_heads, dropout=config.dropout).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, betas=(0.9, 0.98),
                                  weight_decay=config.weight_decay)
    step, epoch, batch_index, records, best_bleu, elapsed = 0, 0, 0, [], -1.0, 0.0
    if initial is not None:
        model.load_state_dict(initial.model.state_dict())
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        step, epoch, batch_index = state["step"], state["epoch"], state["batch_index"]
        records, best_bleu, elapsed = state["records"], state["best_bleu"], state["elapsed"]
    torch.manual_seed(config.seed * 7919 + place.rank * 104729 + step)  # own dropout masks per rank and resume
    trained = model
    if place.world_size > 1:
        trained = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    forward_model = torch.compile(trained) if config.compile else trained
    autocast = (torch.autocast(device.type, dtype=torch.bfloat16) if config.amp else nullcontext())

    def save_last():
        vocab = {"de_vocab": data.de_vocab.to_tensor(), "en_vocab": data.en_vocab.to_tensor()}
        save_atomic({"config": asdict(config), "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                     "step": step, "epoch": epoch, "batch_index": batch_index, "records": records,
                     "best_bleu": best_bleu, "elapsed": elapsed, **vocab}, last_path)

    if place.is_main:
        os.makedirs(config.out_dir, exist_ok=True)
        print(f"Training on {device} with {place.world_size} process(es): effective batch about "
              f"{config.batch_tokens * place.world_size} tokens per side; {len(data.train_sentences)} sentences, "
              f"{len(data.train_phrases)} phrases; {sum(p.numel() for p in model.parameters()):,} parameters",
              flush=True)
    started = time.time() - elapsed
    deadline = started + config.max_minutes * 60 if config.max_minutes else float("inf")
    bar = tqdm(total=config.max_steps, initial=step, disable=not (progress and place.is_main), desc="training",
               dynamic_ncols=True)
    model.train()
    tokens_seen, window_start, loss_sum, loss_count = 0, time.time(), 0.0, 0
    stop = False
    while not stop and step < config.max_steps:
        batches = epoch_batches(data, config, epoch)
        per_rank = len(batches) // place.world_size
        if per_rank == 0:  # else the loop would run through empty epochs forever
            raise ValueError(f"epoch {epoch} has {len(batches)} training batches, fewer than the {place.world_size} "
                             "process(es): use a bigger corpus, a smaller --batch-tokens, a larger --max-len or "
                             "fewer processes")
        mine = batches[place.rank::place.world_size][:per_rank]
        while batch_index < per_rank:
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(step + 1, config)
            with autocast:
                loss, count = translation_loss(forward_model, *collate(mine[batch_index], device),
                                               label_smoothing=config.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip_norm)
            optimizer.step()
            step, batch_index = step + 1, batch_index + 1
            tokens_seen, loss_sum, loss_count = tokens_seen + count, loss_sum + loss.item(), loss_count + 1
            if place.is_main and step % 10 == 0:
                rate = tokens_seen * place.world_size / max(time.time() - window_start, 1e-9)
                bar.set_postfix(epoch=epoch, loss=f"{loss_sum / loss_count:.3f}", tok_s=f"{rate:.0f}")
                bar.update(10)
            out_of_time = (time.time() > deadline or step >= config.max_steps
                           or (step % 10 == 0 and os.path.exists(os.path.join(config.out_dir, "STOP"))))
            if place.world_size > 1:  # every rank must stop at the same step
                flag = torch.tensor([float(out_of_time)], device=device)
                dist.all_reduce(flag, op=dist.ReduceOp.MAX)
                out_of_time = bool(flag.item())
            if step % config.eval_every == 0 or out_of_time:
                if place.is_main:
                    elapsed = time.time() - started
                    record = {"step": step, "epoch": epoch, "minutes": round(elapsed / 60, 1),
                              "train_loss": round(loss_sum / max(loss_count, 1), 4),
                              "tokens_per_s": round(tokens_seen * place.world_size
                                                    / max(time.time() - window_start, 1e-9))}
                    record.update(validate(model, data, config, device))
                    records.append(record)
                    with open(os.path.join(config.out_dir, "log.jsonl"), "a") as log:
                        log.write(json.dumps(record) + "\n")
                    bar.write(json.dumps(record))
                    if record["valid_bleu"] > best_bleu:
                        best_bleu = record["valid_bleu"]
                        info = {"step": step, "valid_bleu": record["valid_bleu"],
                                "valid_chrf": record["valid_chrf"], "minutes": record["minutes"]}
                        Translator(model, data.de_vocab, data.en_vocab, info).save(
                            os.path.join(config.out_dir, "best.pth"))
                    save_snapshot(Translator(model, data.de_vocab, data.en_vocab, {"step": step, **record}),
                                  config.out_dir, step, config.keep_snapshots)
                    save_last()
                if place.world_size > 1:
                    dist.barrier()
                tokens_seen, window_start, loss_sum, loss_count = 0, time.time(), 0.0, 0
            if out_of_time:
                stop = True
                break
        if not stop:
            epoch, batch_index = epoch + 1, 0
    bar.close()
    if place.world_size > 1:
        dist.destroy_process_group()
    return records
