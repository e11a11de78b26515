"""Training the German-English translator: data preparation, length-bucketed batches, the training loop with
periodic validation (loss, BLEU, chrF), atomic checkpoints, resuming, and torch.distributed data parallelism.

The loop is built from small pieces, each testable on its own (read them in this order):

- :class:`TrainConfig`: every setting of a run, with its help text, range and whether a resumed run may change it.
- :func:`start_run`: set-up or resume; returns the :class:`TrainingState` (model, optimizer, step, epoch, ...).
- :func:`train_step`: one optimizer step on one batch (word dropout, learning rate, loss, clipping).
- :func:`stop_reason`: max_steps, max_minutes, a STOP file, or Ctrl-C; agreed on by all processes.
- :func:`validate_and_save`: validation record, log line, best.pth, snapshot, last.pth.
- :func:`train`: the loop that ties them together (``_run``).

Launched with ``torchrun`` (RANK / WORLD_SIZE in the environment) it trains with DistributedDataParallel: ``gloo`` on
the CPU, ``nccl`` on GPUs; every rank builds the same deterministic batches and takes every world_size-th one; rank 0
alone validates, writes checkpoints, logs and shows progress.
"""
import argparse
import json
import math
import os
import random
import signal
import sys
import threading
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field, fields

import torch
import torch.distributed as dist
import torch.nn.functional as F
from tqdm.auto import tqdm

from lib.checkpoint import load_checkpoint, save_atomic
from lib.cli import check_writable_folder, float_range, int_range
from lib.corpus import FORMATS, read_corpus, split_corpus
from lib.noising import word_dropout
from lib.tokenizer import END, PAD, START, UNK, Vocabulary
from lib.transformer import TransformerModel
from lib.translation import Translator

LR_SCHEDULES = ("inverse-sqrt", "linear")
# The German "phrase" tag: <START>, which every vocabulary has and no German source otherwise holds (sources carry no
# start token), so tagged runs need no new vocabulary and old checkpoints can resume with the tag.
PHRASE_TAG = START
# Tokens word dropout never replaces: padding, and the start / end tokens (and so the phrase tag).
PROTECTED_IDS = (PAD, START, END)
STOP_FILE = "STOP"
LAST = "last.pth"


def _setting(default, help, low=None, high=None, low_open=False, high_open=False, choices=None, resumable=False):
    """A TrainConfig field: ``help`` for the command line; the range [low, high] (open ends where ``*_open``) or
    ``choices`` that __post_init__ checks; ``resumable``: a resumed run may change it."""
    return field(default=default, metadata={"help": help, "low": low, "high": high, "low_open": low_open,
                                            "high_open": high_open, "choices": choices, "resumable": resumable})


@dataclass
class TrainConfig:
    """Everything a training run depends on; stored in its checkpoints. Each field's metadata holds its command-line
    help ("help"), its valid range ("low", "high", "low_open", "high_open") or "choices", and "resumable": whether
    ``train(..., resume=True, overrides=...)`` may change it (see RESUMABLE_FIELDS)."""
    corpus: str = _setting(None, "corpus file (None: the installed Ding dictionary /usr/share/trans/de-en)")
    corpus_format: str = _setting("ding", "corpus format: ding, tsv or iwslt", choices=FORMATS)
    out_dir: str = _setting("results/translation", "folder for last.pth, best.pth, snapshots/ and log.jsonl",
                            resumable=True)
    de_vocab_size: int = _setting(8000, "German subword vocabulary size", low=5)
    en_vocab_size: int = _setting(6000, "English subword vocabulary size (the output layer's width)", low=5)
    joint_vocab_size: int = _setting(0, "size of ONE subword vocabulary trained on the German and the English texts "
                                     "together and used for both languages (--de-vocab-size and --en-vocab-size are "
                                     "then unused); 0: a vocabulary per language", low=0)
    max_len: int = _setting(48, "longest sentence in subword tokens (longer training pairs are skipped)", low=1)
    embed_dim: int = _setting(256, "model width", low=1)
    enc_layers: int = _setting(3, "encoder layers", low=0)
    dec_layers: int = _setting(3, "decoder layers", low=0)
    num_heads: int = _setting(4, "attention heads (must divide --embed-dim)", low=1)
    dropout: float = _setting(0.1, "dropout rate during training (embeddings, attention and feed-forward outputs)",
                              low=0.0, high=1.0, high_open=True, resumable=True)
    batch_tokens: int = _setting(2500, "padded tokens per side in a batch (per process)", low=1, resumable=True)
    lr: float = _setting(1e-3, "peak learning rate (AdamW)", low=0.0, low_open=True, resumable=True)
    warmup_steps: int = _setting(400, "linear warm-up steps before the decay", low=0)
    lr_schedule: str = _setting("inverse-sqrt", "decay after the warm-up: inverse-sqrt (lr * sqrt(warmup / step)) or "
                                "linear (to 0 at --max-steps, so that the run anneals; set --max-steps to the steps "
                                "the run can afford)", choices=LR_SCHEDULES)
    cooldown_steps: int = _setting(0, "anneal: over the last N steps before --max-steps the learning rate falls in a "
                                   "straight line from the schedule's value to 0 (a cooldown, as in warmup-stable-"
                                   "decay schedules; resume with a new --max-steps and this to end a run; 0: off)",
                                   low=0, resumable=True)
    weight_decay: float = _setting(0.01, "AdamW weight decay", low=0.0, resumable=True)
    label_smoothing: float = _setting(0.1, "label smoothing of the cross-entropy", low=0.0, high=1.0, high_open=True,
                                      resumable=True)
    clip_norm: float = _setting(1.0, "gradient norm clipping", low=0.0, low_open=True, resumable=True)
    sentence_repeats: int = _setting(2, "times each training sentence appears per epoch", low=0, resumable=True)
    phrases_per_epoch: int = _setting(40000, "dictionary phrases drawn per epoch beside the sentences", low=0,
                                      resumable=True)
    max_steps: int = _setting(100000, "stop after this many optimizer steps", low=1, resumable=True)
    max_minutes: float = _setting(0.0, "stop after this many minutes of training (0: no limit)", low=0.0,
                                  resumable=True)
    eval_every: int = _setting(250, "validate (loss, BLEU, chrF) and checkpoint every this many steps", low=1,
                               resumable=True)
    eval_sentences: int = _setting(500, "validation sentences translated for BLEU at each validation", low=1,
                                   resumable=True)
    keep_snapshots: int = _setting(5, "validated translators kept in OUT_DIR/snapshots for --average (0: none)",
                                   low=0, resumable=True)
    seed: int = _setting(0, "random seed (model, data order, phrase sampling, dropout, word dropout)", low=0,
                         high=2**32 - 1)
    device: str = _setting("cpu", "device to train on: cpu, cuda or cuda:N", resumable=True)
    amp: bool = _setting(False, "bfloat16 autocast (GPUs)", resumable=True)
    compile: bool = _setting(False, "torch.compile the model", resumable=True)
    init_from: str = _setting(None, "start a new run from this translator checkpoint's weights, vocabularies and "
                              "shape (fresh optimizer), e.g. data/translator.pth")
    # The recipe options (issue #11); their defaults give the exercise's model and today's batches.
    pre_norm: bool = _setting(False, "LayerNorm before each attention and feed-forward block (pre-norm, Nguyen & "
                              "Salazar 2019) instead of after the residual sum (the exercise's post-norm)")
    tie_embeddings: bool = _setting(False, "one tensor for the decoder's input embedding and its output layer (Press "
                                    "& Wolf 2017)")
    share_all_embeddings: bool = _setting(False, "one tensor for the encoder's input embedding, the decoder's input "
                                          "embedding and the output layer (Press & Wolf 2017); implies "
                                          "--tie-embeddings and needs --joint-vocab-size")
    ffn_dim: int = _setting(0, "feed-forward hidden width (0: 2 * --embed-dim, the exercise's)", low=0)
    scale_embeddings: bool = _setting(False, "multiply token embeddings by sqrt(--embed-dim) (Vaswani et al. 2017); "
                                      "meant for --pre-norm, where the exercise's tiny embeddings are swamped")
    attention_dropout: float = _setting(-1.0, "dropout on the attention weights (negative: the same as --dropout)",
                                        high=1.0, high_open=True, resumable=True)
    activation_dropout: float = _setting(0.0, "dropout after the feed-forward's ReLU", low=0.0, high=1.0,
                                         high_open=True, resumable=True)
    decoder_layerdrop: float = _setting(0.0, "probability of skipping each decoder layer in a training step "
                                        "(LayerDrop, Fan et al. 2019)", low=0.0, high=1.0, high_open=True,
                                        resumable=True)
    source_word_dropout: float = _setting(0.0, "probability of replacing each German training token by <UNK> "
                                          "(word dropout, Sennrich & Zhang 2019)", low=0.0, high=1.0,
                                          high_open=True, resumable=True)
    target_word_dropout: float = _setting(0.0, "probability of replacing each English decoder-input token by <UNK> "
                                          "in training (the predicted labels stay)", low=0.0, high=1.0,
                                          high_open=True, resumable=True)
    phrase_tag: bool = _setting(False, "start the German of each dictionary phrase with a tag (the <START> piece) so "
                                "the model can tell phrases from sentences; validation and translation never carry "
                                "it", resumable=True)

    def __post_init__(self):
        for setting in fields(self):
            value = getattr(self, setting.name)
            if setting.type is str and isinstance(value, os.PathLike):
                setattr(self, setting.name, value := os.fspath(value))
            _check_setting(setting, value)
        if self.num_heads >= 1 and self.embed_dim % self.num_heads:
            raise ValueError(f"--num-heads {self.num_heads} must divide --embed-dim {self.embed_dim}")
        if 0 < self.joint_vocab_size < 5:
            raise ValueError(f"--joint-vocab-size must be 0 (a vocabulary per language) or at least 5, got "
                             f"{self.joint_vocab_size}")
        if self.share_all_embeddings and not self.joint_vocab_size and not self.init_from:
            raise ValueError("--share-all-embeddings needs one vocabulary for German and English: add "
                             "--joint-vocab-size N (e.g. 8000), or leave --share-all-embeddings out")
        try:
            torch.device(self.device)
        except RuntimeError:
            raise ValueError(f"--device {self.device!r} is not a device: use cpu, cuda or cuda:N") from None


def flag(name):
    """The command-line flag of a TrainConfig field: 'max_steps' -> '--max-steps'."""
    return "--" + name.replace("_", "-")


def _check_setting(setting, value):
    """Raise ValueError naming the flag unless ``value`` has the field's type and lies in its range or choices."""
    kind, meta = setting.type, setting.metadata
    if value is None and setting.default is None:
        return
    if kind is bool:
        ok = isinstance(value, bool)
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    else:
        ok = isinstance(value, str)
    if not ok:
        wanted = {bool: "True or False", int: "a whole number", float: "a finite number"}.get(kind, "a string")
        raise ValueError(f"{flag(setting.name)} must be {wanted}, got {value!r}")
    if meta["choices"] is not None and value not in meta["choices"]:
        raise ValueError(f"{flag(setting.name)} must be one of {', '.join(meta['choices'])}, got {value!r}")
    if meta["low"] is not None or meta["high"] is not None:  # the command line's own range check, on the text
        check = (int_range(meta["low"], meta["high"]) if kind is int else
                 float_range(meta["low"], meta["high"], meta["low_open"], meta["high_open"]))
        try:
            check(repr(value))
        except argparse.ArgumentTypeError as error:
            raise ValueError(f"{flag(setting.name)} {error}") from None


# What a resumed run may change (its length, devices, folder, learning rate and regularisation, data mix); all else
# (the model's shape, vocabularies, corpus, seed, schedule) is fixed by the run's checkpoint.
RESUMABLE_FIELDS = tuple(setting.name for setting in fields(TrainConfig) if setting.metadata["resumable"])


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
    """Vocabularies and tokenized pairs: sentences (always used) and phrases (sampled each epoch; their German behind
    PHRASE_TAG when ``config.phrase_tag``) for training, and the validation pairs (for the validation loss)."""
    de_vocab: Vocabulary
    en_vocab: Vocabulary
    splits: dict
    train_sentences: list
    train_phrases: list
    valid_examples: list


def _fits(example, max_len):
    return 0 < len(example[0]) <= max_len and 0 < len(example[1]) <= max_len


def prepare_data(config, vocabularies=None):
    """Read and split the corpus, train (or reuse) the vocabularies, tokenize the training pairs.

    The vocabularies are trained on the training sentences and up to 100,000 training phrases: one per language,
    or with ``config.joint_vocab_size`` one on both languages' texts, which is then both de_vocab and en_vocab."""
    splits = split_corpus(read_corpus(config.corpus, config.corpus_format))
    sentences = [pair for pair in splits["train"] if pair.sentence]
    phrases = [pair for pair in splits["train"] if not pair.sentence]
    if vocabularies is None:
        sample = random.Random(config.seed).sample(phrases, min(len(phrases), 100000))
        german, english = [pair.german for pair in sentences + sample], [pair.english for pair in sentences + sample]
        if config.joint_vocab_size:
            de_vocab = en_vocab = Vocabulary.train_joint(german, english, config.joint_vocab_size)
        else:
            de_vocab = Vocabulary.train(german, config.de_vocab_size)
            en_vocab = Vocabulary.train(english, config.en_vocab_size)
    else:
        de_vocab, en_vocab = vocabularies

    def tokenize(pairs, tag=False):
        german = de_vocab.encode([pair.german for pair in pairs])
        if tag:
            german = [[PHRASE_TAG] + ids for ids in german]
        examples = zip(german, en_vocab.encode([pair.english for pair in pairs]))
        return [example for example in examples if _fits(example, config.max_len)]
    return PreparedData(de_vocab, en_vocab, splits, tokenize(sentences), tokenize(phrases, config.phrase_tag),
                        tokenize(splits["valid"]))


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


def rank_batches(data, config, epoch, place):
    """This process's share of the epoch's batches: every world_size-th one, the same count on every rank."""
    batches = epoch_batches(data, config, epoch)
    per_rank = len(batches) // place.world_size
    if per_rank == 0:  # else the loop would run through empty epochs forever
        raise ValueError(f"epoch {epoch} has {len(batches)} training batches, fewer than the {place.world_size} "
                         "process(es): use a bigger corpus, a smaller --batch-tokens, a larger --max-len or "
                         "fewer processes")
    return batches[place.rank::place.world_size][:per_rank]


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


def noise_seed(config, rank, step):
    """The seed of step ``step``'s word dropout on ``rank``: a function of the run's seed alone, so resuming at any
    step draws the same noise as the uninterrupted run."""
    return ((config.seed * 1_000_003 + rank) * 1_000_003 + step) % 2**63


def training_batch(batch, config, device, rank=0, step=1):
    """collate() plus word dropout (training only): each source token and decoder-input token that is not in
    PROTECTED_IDS becomes UNK with probability ``source_word_dropout`` / ``target_word_dropout``; the decoder
    target (the labels) is never changed. Returns (source (B, S), decoder input (B, T + 1), decoder target)."""
    if not (config.source_word_dropout or config.target_word_dropout):
        return collate(batch, device)
    source, decoder_input, decoder_target = collate(batch, "cpu")
    generator = torch.Generator().manual_seed(noise_seed(config, rank, step))
    if config.source_word_dropout:
        source = word_dropout(source, config.source_word_dropout, UNK, PROTECTED_IDS, generator)
    if config.target_word_dropout:
        decoder_input = word_dropout(decoder_input, config.target_word_dropout, UNK, PROTECTED_IDS, generator)
    return source.to(device), decoder_input.to(device), decoder_target.to(device)


def translation_loss(model, source, decoder_input, decoder_target, label_smoothing=0.0):
    """Mean cross-entropy per target token (padding ignored). Returns (loss, number of target tokens)."""
    logits, _ = model(source, decoder_input, src_padding_mask=source == PAD, need_weights=False)
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), decoder_target.reshape(-1),
                           ignore_index=PAD, label_smoothing=label_smoothing)
    return loss, int((decoder_target != PAD).sum())


def learning_rate(step, config):
    """Linear warm-up to ``lr`` over ``warmup_steps``, then ``config.lr_schedule``: 'inverse-sqrt' decay
    (lr * sqrt(warmup_steps / step)), or 'linear' decay that reaches 0 at ``max_steps`` (a run that anneals). With
    ``cooldown_steps`` N, the last N steps fall in a straight line from the schedule's value at step max_steps - N
    to 0 at max_steps."""
    step = max(step, 1)
    cooldown_start = config.max_steps - config.cooldown_steps
    if config.cooldown_steps and step > cooldown_start:
        return _scheduled_rate(max(cooldown_start, 1), config) * max(config.max_steps - step, 0) / config.cooldown_steps
    return _scheduled_rate(step, config)


def _scheduled_rate(step, config):
    """The warm-up and ``lr_schedule`` of ``learning_rate``, without the cooldown."""
    warmup = step / config.warmup_steps if config.warmup_steps > 0 else 1.0
    if config.lr_schedule == "linear":
        remaining = (config.max_steps - step) / max(config.max_steps - config.warmup_steps, 1)
        return config.lr * max(min(warmup, remaining), 0.0)
    return config.lr * min(warmup, math.sqrt(max(config.warmup_steps, 1) / step))


# ---- the model --------------------------------------------------------------------------------------------------


def model_kwargs(config, en_vocab_size, de_vocab_size):
    """TransformerModel's keyword arguments for ``config`` (ffn_dim 0 and a negative attention_dropout become None:
    the model's 2 * embed_dim and 'same as dropout')."""
    return dict(en_vocab_size=en_vocab_size, de_vocab_size=de_vocab_size, max_len=config.max_len,
                embed_dim=config.embed_dim, enc_layers=config.enc_layers, dec_layers=config.dec_layers,
                num_heads=config.num_heads, dropout=config.dropout, pre_norm=config.pre_norm,
                tie_embeddings=config.tie_embeddings, ffn_dim=config.ffn_dim or None,
                attention_dropout=None if config.attention_dropout < 0 else config.attention_dropout,
                activation_dropout=config.activation_dropout, decoder_layerdrop=config.decoder_layerdrop,
                scale_embeddings=config.scale_embeddings, share_all_embeddings=config.share_all_embeddings)


def build_model(config, data):
    """The TransformerModel ``config`` describes, for ``data``'s vocabularies (drawn from torch's global RNG)."""
    return TransformerModel(**model_kwargs(config, len(data.en_vocab), len(data.de_vocab)))


# The model's shape, which a run started with init_from takes from the translator.
SHAPE_FIELDS = ("max_len", "embed_dim", "enc_layers", "dec_layers", "num_heads", "pre_norm", "tie_embeddings",
                "ffn_dim", "scale_embeddings", "share_all_embeddings")


def shape_of(model):
    """The SHAPE_FIELDS of a built model, as TrainConfig values (ffn_dim None -> 0)."""
    saved = model.config()
    shape = {name: saved.get(name, getattr(TrainConfig, name)) for name in SHAPE_FIELDS}
    shape["ffn_dim"] = shape["ffn_dim"] or 0
    return shape


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


# ---- set-up and resume ------------------------------------------------------------------------------------------


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C ended training after ``path`` (last.pth) was saved at ``step``; str() is one line saying how to go on."""

    def __init__(self, step, path, out_dir):
        super().__init__(f"Interrupted at step {step}: {path} saved; continue with: "
                         f"python run_translation.py --train --resume --out-dir {out_dir}")
        self.step, self.path, self.out_dir = step, path, out_dir

    def __str__(self):
        return self.args[0]

    def __reduce__(self):  # pickled (e.g. between processes) with its own arguments, not the message
        return type(self), (self.step, self.path, self.out_dir)


@dataclass
class TrainingState:
    """What a run carries from step to step; last.pth holds all of it but ``place``, ``device``, ``data`` and
    ``started`` (time.time() minus the seconds trained before this process)."""
    config: TrainConfig
    place: Distributed
    device: torch.device
    data: PreparedData
    model: TransformerModel
    optimizer: torch.optim.Optimizer
    step: int = 0
    epoch: int = 0
    batch_index: int = 0  # the next batch of this epoch (per rank)
    best_bleu: float = -1.0
    records: list = field(default_factory=list)
    started: float = field(default_factory=lambda: time.time())  # the clock as called (tests replace it)
    rng: dict = None  # torch's RNG states as of ``step`` (rng_state())

    @property
    def last_path(self):
        return os.path.join(self.config.out_dir, LAST)

    def elapsed(self):
        """Seconds trained, over all the run's processes' lives."""
        return time.time() - self.started


def check_out_dir(out_dir):
    """Before any work: ``out_dir`` must be writable (made if missing) and hold no STOP file from the last run."""
    check_writable_folder(out_dir, "--out-dir")
    stop = os.path.join(out_dir, STOP_FILE)
    if os.path.exists(stop):
        raise ValueError(f"{stop} exists: it stopped the last run in this folder and would stop this one within 10 "
                         f"steps. Delete it (rm {stop}) and start again.")


def resumed_config(saved, overrides, path):
    """The config of a resumed run: ``saved`` (the checkpoint's config dict) with ``overrides`` applied.

    A field not in RESUMABLE_FIELDS may only be given with its saved value; others raise one ValueError naming them.
    """
    names = {setting.name for setting in fields(TrainConfig)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise ValueError(f"unknown training setting(s) {', '.join(unknown)}: TrainConfig has no such field")
    values = {setting.name: saved.get(setting.name, setting.default) for setting in fields(TrainConfig)}
    fixed = [name for name, value in overrides.items() if name not in RESUMABLE_FIELDS and value != values[name]]
    if fixed:
        given = ", ".join(f"{flag(name)} {overrides[name]}" for name in fixed)
        kept = ", ".join(f"{flag(name)} {values[name]}" for name in fixed)
        raise ValueError(f"{given}: fixed by the run's checkpoint {path} ({kept}), so a resumed run cannot change "
                         f"{'it' if len(fixed) == 1 else 'them'}. Leave {'it' if len(fixed) == 1 else 'them'} out, "
                         "or start a new run in another --out-dir (--init-from keeps the weights).")
    values.update(overrides)
    return TrainConfig(**values)


def rng_state(device):
    """torch's random-number states (the CPU's, and the device's on CUDA), for an exact resume."""
    state = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device).cpu()
    return state


def set_rng_state(state, device):
    torch.set_rng_state(state["cpu"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def start_run(config, place, resume=False, overrides=None):
    """Set up a run, new or resumed from ``out_dir/last.pth``; returns its TrainingState.

    Checks the settings (of a resumed run) and the out-dir (writable, no STOP file) before it reads the corpus.
    ``overrides`` (resume only): the fields the user gave, checked and applied by resumed_config; None means every
    field of ``config``. The run continues in ``config.out_dir``, the folder it was resumed from.
    """
    checkpoint = None
    if resume:
        last_path = os.path.join(config.out_dir, LAST)
        checkpoint = load_checkpoint(last_path, "Start a new run without --resume.")
        given = asdict(config) if overrides is None else {**overrides, "out_dir": config.out_dir}
        config = resumed_config(checkpoint["config"], given, last_path)
    check_out_dir(config.out_dir)
    device = torch.device(f"cuda:{place.local_rank}" if config.device.startswith("cuda") and place.world_size > 1
                          else config.device)
    torch.manual_seed(config.seed)
    vocabularies, initial = None, None
    if checkpoint is not None:
        vocabularies = (Vocabulary.from_tensor(checkpoint["de_vocab"]), Vocabulary.from_tensor(checkpoint["en_vocab"]))
    elif config.init_from:  # a new run that starts from a translator's weights, vocabularies and shape
        initial = Translator.load(config.init_from)
        vocabularies = (initial.de_vocab, initial.en_vocab)
        config = TrainConfig(**{**asdict(config), **shape_of(initial.model)})
    data = prepare_data(config, vocabularies)
    model = build_model(config, data).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, betas=(0.9, 0.98),
                                  weight_decay=config.weight_decay)
    state = TrainingState(config, place, device, data, model, optimizer)
    if initial is not None:
        model.load_state_dict(initial.model.state_dict())
    if checkpoint is not None:
        restore(state, checkpoint)
    else:
        torch.manual_seed(config.seed * 7919 + place.rank * 104729)  # each rank its own dropout masks
    state.rng = rng_state(device)
    return state


def restore(state, checkpoint):
    """Load a last.pth checkpoint into ``state``: weights, optimizer, position, records and RNG states."""
    state.model.load_state_dict(checkpoint["model"])
    state.optimizer.load_state_dict(checkpoint["optimizer"])
    for group in state.optimizer.param_groups:  # a resumed run may change the weight decay
        group["weight_decay"] = state.config.weight_decay
    state.step, state.epoch, state.batch_index = checkpoint["step"], checkpoint["epoch"], checkpoint["batch_index"]
    state.records, state.best_bleu = checkpoint["records"], checkpoint["best_bleu"]
    state.started = time.time() - checkpoint["elapsed"]
    saved_rng = checkpoint.get("rng_states") or []
    if len(saved_rng) == state.place.world_size:  # continue each rank's random numbers exactly
        set_rng_state(saved_rng[state.place.rank], state.device)
    else:  # an older checkpoint, or another number of processes: new masks, still reproducible
        torch.manual_seed(state.config.seed * 7919 + state.place.rank * 104729 + state.step)


def save_last(state, rng_states=None):
    """Write ``out_dir/last.pth`` atomically: everything needed to resume (``rng_states``: one per rank, or None)."""
    data = state.data
    save_atomic({"config": asdict(state.config), "model": state.model.state_dict(),
                 "optimizer": state.optimizer.state_dict(), "step": state.step, "epoch": state.epoch,
                 "batch_index": state.batch_index, "records": state.records, "best_bleu": state.best_bleu,
                 "elapsed": state.elapsed(), "rng_states": rng_states, "de_vocab": data.de_vocab.to_tensor(),
                 "en_vocab": data.en_vocab.to_tensor()}, state.last_path)


def gather_rng_states(state):
    """Every rank's RNG states as of ``state.step``, in rank order (a collective call in a distributed run)."""
    if state.place.world_size == 1:
        return [state.rng]
    gathered = [None] * state.place.world_size
    dist.all_gather_object(gathered, state.rng)
    return gathered


# ---- one step, stopping, validating -----------------------------------------------------------------------------


def train_step(state, batch, forward_model=None, autocast=None):
    """One optimizer step on ``batch`` (a list of (german ids, english ids)) at the schedule's learning rate.

    ``forward_model``: the module that runs the forward pass (the DDP-wrapped or compiled model; default
    state.model). Advances state.step and state.batch_index. Returns (mean loss, target tokens) of the batch.
    """
    config, step = state.config, state.step + 1
    for group in state.optimizer.param_groups:
        group["lr"] = learning_rate(step, config)
    tensors = training_batch(batch, config, state.device, state.place.rank, step)
    with autocast or nullcontext():
        loss, count = translation_loss(forward_model or state.model, *tensors, label_smoothing=config.label_smoothing)
    state.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(state.model.parameters(), config.clip_norm)
    state.optimizer.step()
    state.step, state.batch_index = step, state.batch_index + 1
    state.rng = rng_state(state.device)
    return loss.item(), count


# Why a run stops, weakest first: all processes stop for the strongest reason any of them has.
STOP_REASONS = (None, "max_steps", "max_minutes", "STOP file", "interrupted")


def stop_reason(state, deadline, interrupted=False):
    """None to go on, else why the run ends after this step: 'max_steps', 'max_minutes' (time.time() past
    ``deadline``), 'STOP file' (out_dir/STOP, looked for every 10 steps) or 'interrupted' (Ctrl-C). In a distributed
    run the processes agree (a collective call every step)."""
    config = state.config
    reason = None
    if interrupted:
        reason = "interrupted"
    elif state.step % 10 == 0 and os.path.exists(os.path.join(config.out_dir, STOP_FILE)):
        reason = "STOP file"
    elif time.time() > deadline:
        reason = "max_minutes"
    elif state.step >= config.max_steps:
        reason = "max_steps"
    if state.place.world_size > 1:
        code = torch.tensor([float(STOP_REASONS.index(reason))], device=state.device)
        dist.all_reduce(code, op=dist.ReduceOp.MAX)
        reason = STOP_REASONS[int(code.item())]
    return reason


def stop_message(state, reason):
    """One line on why the run stopped early ('STOP file' or 'max_minutes') and what was saved."""
    if reason == "STOP file":
        stop = os.path.join(state.config.out_dir, STOP_FILE)
        return f"Stopped at step {state.step}: found {stop}; {state.last_path} saved (delete {stop} before --resume)"
    return f"Stopped at step {state.step}: --max-minutes {state.config.max_minutes:g} reached; {state.last_path} saved"


@dataclass
class Window:
    """Training loss and throughput since the last validation."""
    tokens: int = 0
    loss_sum: float = 0.0
    steps: int = 0
    started: float = field(default_factory=lambda: time.time())  # the clock as called (tests replace it)

    def add(self, loss, tokens):
        self.tokens, self.loss_sum, self.steps = self.tokens + tokens, self.loss_sum + loss, self.steps + 1

    def mean_loss(self):
        return self.loss_sum / max(self.steps, 1)

    def tokens_per_s(self, world_size):
        return self.tokens * world_size / max(time.time() - self.started, 1e-9)


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


def validate_and_save(state, window):
    """Validate (rank 0) and save: a record appended to state.records and log.jsonl, best.pth when BLEU improved, a
    snapshot and last.pth. A collective call in a distributed run. Returns the record (None on other ranks)."""
    config, model, data = state.config, state.model, state.data
    rng_states = gather_rng_states(state)
    record = None
    if state.place.is_main:
        record = {"step": state.step, "epoch": state.epoch, "minutes": round(state.elapsed() / 60, 1),
                  "train_loss": round(window.mean_loss(), 4),
                  "tokens_per_s": round(window.tokens_per_s(state.place.world_size))}
        record.update(validate(model, data, config, state.device))
        state.records.append(record)
        with open(os.path.join(config.out_dir, "log.jsonl"), "a") as log:
            log.write(json.dumps(record) + "\n")
        if record["valid_bleu"] > state.best_bleu:
            state.best_bleu = record["valid_bleu"]
            info = {"step": state.step, "valid_bleu": record["valid_bleu"], "valid_chrf": record["valid_chrf"],
                    "minutes": record["minutes"]}
            Translator(model, data.de_vocab, data.en_vocab, info).save(os.path.join(config.out_dir, "best.pth"))
        save_snapshot(Translator(model, data.de_vocab, data.en_vocab, {"step": state.step, **record}),
                      config.out_dir, state.step, config.keep_snapshots)
        save_last(state, rng_states)
    if state.place.world_size > 1:
        dist.barrier()
    return record


class GracefulInterrupt:
    """While active (in the main thread), a first Ctrl-C only sets ``requested``, so that training ends cleanly after
    the current step; a second one raises KeyboardInterrupt at once."""

    def __init__(self, announce=True):
        self.announce, self.requested, self.previous = announce, False, None

    def _handle(self, signum, frame):
        self.requested = True
        signal.signal(signal.SIGINT, self.previous)
        if self.announce:
            print("\nCtrl-C: saving last.pth after this step (press Ctrl-C again to quit without saving)",
                  file=sys.stderr, flush=True)

    def __enter__(self):
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
            self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


# ---- the training loop ------------------------------------------------------------------------------------------


def train(config, resume=False, progress=True, overrides=None):
    """Train (or, with ``resume``, continue from ``out_dir/last.pth``) until ``max_steps`` or ``max_minutes``.

    ``overrides`` (with ``resume``): the fields the user gave (a dict); those in RESUMABLE_FIELDS are applied, the
    others must equal the saved run's (else ValueError). None: every field of ``config``.
    ``config.init_from`` (a translator checkpoint such as data/translator.pth) starts a new run from its weights,
    vocabularies and shape, with a fresh optimizer: how training continues where only that file survives.
    A file named STOP in ``out_dir`` ends the run gracefully (validated and saved) within 10 steps; one left there
    before the start is an error. Ctrl-C saves last.pth and raises TrainingInterrupted.
    Writes ``out_dir/last.pth`` (everything needed to resume), ``out_dir/best.pth`` (the translator with the best
    validation BLEU), the ``keep_snapshots`` latest validated translators in ``out_dir/snapshots/`` (for checkpoint
    averaging) and ``out_dir/log.jsonl``. Returns the list of validation records.
    """
    place = init_distributed(config.device)
    try:
        state = start_run(config, place, resume, overrides)
        return _run(state, progress)
    finally:
        if place.world_size > 1 and dist.is_initialized():
            dist.destroy_process_group()


def _run(state, progress):
    """The loop of :func:`train` over epochs and steps, from ``state`` on."""
    config, place, model = state.config, state.place, state.model
    trained = model
    if place.world_size > 1:
        trained = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[state.device.index] if state.device.type == "cuda" else None,
            find_unused_parameters=config.decoder_layerdrop > 0)  # a skipped layer's parameters get no gradient
    forward_model = torch.compile(trained) if config.compile else trained
    autocast = torch.autocast(state.device.type, dtype=torch.bfloat16) if config.amp else nullcontext()
    if place.is_main:
        print(f"Training on {state.device} with {place.world_size} process(es): effective batch about "
              f"{config.batch_tokens * place.world_size} tokens per side; {len(state.data.train_sentences)} "
              f"sentences, {len(state.data.train_phrases)} phrases; {sum(p.numel() for p in model.parameters()):,} "
              "parameters", flush=True)
    deadline = state.started + config.max_minutes * 60 if config.max_minutes else float("inf")
    bar = tqdm(total=config.max_steps, initial=state.step, disable=not (progress and place.is_main),
               desc="training", dynamic_ncols=True)
    model.train()
    window = Window()
    try:
        with GracefulInterrupt(announce=place.is_main) as interrupt:
            while state.step < config.max_steps:
                batches = rank_batches(state.data, config, state.epoch, place)
                while state.batch_index < len(batches):
                    window.add(*train_step(state, batches[state.batch_index], forward_model, autocast))
                    if place.is_main and state.step % 10 == 0:
                        bar.set_postfix(epoch=state.epoch, loss=f"{window.mean_loss():.3f}",
                                        tok_s=f"{window.tokens_per_s(place.world_size):.0f}")
                        bar.update(10)
                    reason = stop_reason(state, deadline, interrupt.requested)
                    if reason == "interrupted":
                        rng_states = gather_rng_states(state)
                        if place.is_main:
                            save_last(state, rng_states)
                        raise TrainingInterrupted(state.step, state.last_path, config.out_dir)
                    if state.step % config.eval_every == 0 or reason:
                        record = validate_and_save(state, window)
                        if record is not None:
                            bar.write(json.dumps(record))
                        window = Window()
                    if reason:
                        if place.is_main and reason != "max_steps":
                            bar.write(stop_message(state, reason))
                        return state.records
                state.epoch, state.batch_index = state.epoch + 1, 0
    except TrainingInterrupted:
        raise
    except KeyboardInterrupt:  # a second Ctrl-C, or one outside the main thread's handler: save the last whole step
        if place.is_main:
            save_last(state, [state.rng] if place.world_size == 1 else None)
        raise TrainingInterrupted(state.step, state.last_path, config.out_dir) from None
    finally:
        bar.close()
    return state.records
