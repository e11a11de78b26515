"""The settings of a translator's training run (:class:`TrainConfig`: help text, range, and whether a resumed run may
change each), the learning-rate schedule, and the model a config describes."""
import argparse
import math
import os
from dataclasses import dataclass, field, fields

import torch

from lib.cli import float_range, int_range
from lib.translation.corpus import FORMATS
from lib.transformer import TransformerModel

LR_SCHEDULES = ("inverse-sqrt", "linear")


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
    # Extra training text beside the corpus (issue #22), e.g. the Debian corpus of tools/build_parallel_corpus.py.
    extra_corpus: str = _setting(None, "a tsv of extra TRAINING pairs (german<TAB>english<TAB>source...), e.g. "
                                 ".corpus/debian-de-en.tsv from tools/build_parallel_corpus.py; never held out, and "
                                 "its pairs whose German or English is a valid or test sentence of --corpus are "
                                 "dropped", resumable=True)
    extra_per_epoch: int = _setting(100000, "--extra-corpus pairs drawn per epoch beside the corpus's sentences and "
                                    "phrases (0: all of them)", low=0, resumable=True)
    extra_sources: str = _setting("", "comma-separated sources (third column) of --extra-corpus to train on, e.g. "
                                  "games,libreoffice-help (empty: all)", resumable=True)
    extra_tag: bool = _setting(False, "start the German of each --extra-corpus pair with a domain tag (the <END> "
                               "piece, which no source otherwise holds), so the model can tell that text from the "
                               "dictionary's (Kobus et al. 2017); translation never carries it", resumable=True)

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
