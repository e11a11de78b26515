"""The settings of a translator's training run (:class:`TrainConfig`: type, help text, range, and whether a resumed
run may change each), its command-line flags, the learning-rate schedule, the model a config describes, and whether a
device computes bfloat16 natively.

A setting that is unset is None (e.g. ``ffn_dim`` None: the model's 2 * embed_dim). Run folders written before that
stored other values for "unset" (0, a negative dropout, ''): :func:`without_old_unset` turns them into None when a
stored config is read, and the flags still accept them.
"""
import argparse
import math
import os
from dataclasses import dataclass, field, fields

import torch

from lib.checks import check_range
from lib.cli import float_range, int_range
from lib.files import is_stdin
from lib.translation.corpus import EVERYDAY_PATH, FORMATS
from lib.transformer import TransformerModel

LR_SCHEDULES = ("inverse-sqrt", "linear")
NO_DEV_CORPUS = "none"  # --dev-corpus none: validate on the corpus's valid split alone


def _setting(kind, default, help, low=None, high=None, low_open=False, high_open=False, choices=None,
             resumable=False, old_unset=None):
    """A TrainConfig field of type ``kind`` (bool, int, float or str; None is allowed where ``default`` is None):
    ``help`` for the command line; the range [low, high] (open ends where ``*_open``) or ``choices`` that
    __post_init__ checks; ``resumable``: a resumed run may change it; ``old_unset``: a test of the values that meant
    "unset" before None did (such values in stored configs and on the command line become None). None is a valid value
    (unset) where ``default`` is None or there is an ``old_unset``."""
    return field(default=default, metadata={"type": kind, "help": help, "low": low, "high": high,
                                            "low_open": low_open, "high_open": high_open, "choices": choices,
                                            "resumable": resumable, "old_unset": old_unset,
                                            "optional": default is None or old_unset is not None})


def _is_zero(value):
    return value == 0


def _is_negative(value):
    return value < 0


def _is_empty(value):
    return value == ""


@dataclass
class TrainConfig:
    """Everything a training run depends on; stored in its checkpoints. Each field's metadata holds its type
    ("type"), command-line help ("help"), valid range ("low", "high", "low_open", "high_open") or "choices",
    "resumable": whether ``train(..., resume=True, overrides=...)`` may change it (see RESUMABLE_FIELDS), and
    "old_unset": what meant "unset" before None did."""
    corpus: str | None = _setting(str, None, "corpus file (None: the installed Ding dictionary "
                                  "/usr/share/trans/de-en)")
    corpus_format: str = _setting(str, "ding", "corpus format: ding, tsv or iwslt", choices=FORMATS)
    out_dir: str = _setting(str, "results/translation", "folder for last.pth, best.pth, snapshots/ and log.jsonl",
                            resumable=True)
    de_vocab_size: int = _setting(int, 8000, "German subword vocabulary size", low=5, high=100_000)
    en_vocab_size: int = _setting(int, 6000, "English subword vocabulary size (the output layer's width)", low=5,
                                  high=100_000)
    joint_vocab_size: int | None = _setting(int, None, "size of ONE subword vocabulary trained on the German and the "
                                            "English texts together and used for both languages (--de-vocab-size "
                                            "and --en-vocab-size are then unused); None (or 0): a vocabulary per "
                                            "language", low=5, high=100_000, old_unset=_is_zero)
    max_len: int = _setting(int, 48, "longest sentence in subword tokens (longer training pairs are skipped)", low=1,
                            high=1024)
    embed_dim: int = _setting(int, 256, "model width", low=1, high=8192)
    enc_layers: int = _setting(int, 3, "encoder layers", low=0, high=64)
    dec_layers: int = _setting(int, 3, "decoder layers", low=0, high=64)
    num_heads: int = _setting(int, 4, "attention heads (must divide --embed-dim)", low=1, high=256)
    dropout: float = _setting(float, 0.1, "dropout rate during training (embeddings, attention and feed-forward "
                              "outputs)", low=0.0, high=1.0, high_open=True, resumable=True)
    batch_tokens: int = _setting(int, 2500, "padded tokens per side in a batch (per process)", low=1, high=1_000_000,
                                 resumable=True)
    lr: float = _setting(float, 1e-3, "peak learning rate (AdamW)", low=0.0, high=10.0, low_open=True, resumable=True)
    warmup_steps: int = _setting(int, 400, "linear warm-up steps before the decay", low=0, high=10_000_000)
    lr_schedule: str = _setting(str, "inverse-sqrt", "decay after the warm-up: inverse-sqrt (lr * sqrt(warmup / "
                                "step)) or linear (to 0 at --max-steps, so that the run anneals; set --max-steps to "
                                "the steps the run can afford)", choices=LR_SCHEDULES)
    cooldown_steps: int = _setting(int, 0, "anneal: over the last N steps before --max-steps the learning rate falls "
                                   "in a straight line from the schedule's value to 0 (a cooldown, as in warmup-"
                                   "stable-decay schedules; resume with a new --max-steps and this to end a run; 0: "
                                   "off)", low=0, high=10_000_000, resumable=True)
    weight_decay: float = _setting(float, 0.01, "AdamW weight decay", low=0.0, high=10.0, resumable=True)
    label_smoothing: float = _setting(float, 0.1, "label smoothing of the cross-entropy", low=0.0, high=1.0,
                                      high_open=True, resumable=True)
    clip_norm: float = _setting(float, 1.0, "gradient norm clipping", low=0.0, high=1e6, low_open=True, resumable=True)
    sentence_repeats: int = _setting(int, 2, "times each training sentence appears per epoch", low=0, high=1000,
                                     resumable=True)
    phrases_per_epoch: int = _setting(int, 40000, "dictionary phrases drawn per epoch beside the sentences", low=0,
                                      high=100_000_000,
                                      resumable=True)
    max_steps: int = _setting(int, 100000, "stop after this many optimizer steps", low=1, high=100_000_000,
                              resumable=True)
    max_minutes: float | None = _setting(float, None, "stop after this many minutes of training (None or 0: no "
                                         "limit)", low=0.0, high=1e6, low_open=True, resumable=True, old_unset=_is_zero)
    eval_every: int = _setting(int, 250, "validate (loss, BLEU, chrF) and checkpoint every this many steps", low=1,
                               high=10_000_000,
                               resumable=True)
    eval_sentences: int = _setting(int, 500, "validation sentences translated for BLEU at each validation", low=1,
                                   high=1_000_000,
                                   resumable=True)
    dev_corpus: str | None = _setting(str, None, "a second dev set (german<TAB>english lines, never trained on) "
                                      "whose first --eval-sentences pairs are translated greedily at each "
                                      "validation, logged as dev_bleu / dev_chrf beside the corpus's valid split "
                                      f"(None: data/everyday.tsv, the project's everyday German; {NO_DEV_CORPUS}: no "
                                      "second dev set)", resumable=True)
    keep_snapshots: int = _setting(int, 5, "validated translators kept in OUT_DIR/snapshots for --average (0: none)",
                                   low=0, high=1000, resumable=True)
    seed: int = _setting(int, 0, "random seed (model, data order, phrase sampling, dropout, word dropout)", low=0,
                         high=2**32 - 1)
    device: str = _setting(str, "cpu", "device to train on: cpu, cuda or cuda:N", resumable=True)
    amp: bool = _setting(bool, False, "bfloat16 autocast", resumable=True)
    compile: bool = _setting(bool, False, "torch.compile the model", resumable=True)
    init_from: str | None = _setting(str, None, "start a new run from this translator checkpoint's weights, "
                                     "vocabularies and shape (fresh optimizer), e.g. data/translator.pth")
    # The recipe options; their defaults give the exercise's model and today's batches.
    pre_norm: bool = _setting(bool, False, "LayerNorm before each attention and feed-forward block (pre-norm, Nguyen "
                              "& Salazar 2019) instead of after the residual sum (the exercise's post-norm)")
    tie_embeddings: bool = _setting(bool, False, "one tensor for the decoder's input embedding and its output layer "
                                    "(Press & Wolf 2017)")
    share_all_embeddings: bool = _setting(bool, False, "one tensor for the encoder's input embedding, the decoder's "
                                          "input embedding and the output layer (Press & Wolf 2017); implies "
                                          "--tie-embeddings and needs --joint-vocab-size")
    ffn_dim: int | None = _setting(int, None, "feed-forward hidden width (None or 0: 2 * --embed-dim, the "
                                   "exercise's)", low=1, high=65_536, old_unset=_is_zero)
    scale_embeddings: bool = _setting(bool, False, "multiply token embeddings by sqrt(--embed-dim) (Vaswani et al. "
                                      "2017); meant for --pre-norm, where the exercise's tiny embeddings are swamped")
    attention_dropout: float | None = _setting(float, None, "dropout on the attention weights (None or negative: the "
                                               "same as --dropout)", low=0.0, high=1.0, high_open=True,
                                               resumable=True, old_unset=_is_negative)
    activation_dropout: float = _setting(float, 0.0, "dropout after the feed-forward's ReLU", low=0.0, high=1.0,
                                         high_open=True, resumable=True)
    decoder_layerdrop: float = _setting(float, 0.0, "probability of skipping each decoder layer in a training step "
                                        "(LayerDrop, Fan et al. 2019)", low=0.0, high=1.0, high_open=True,
                                        resumable=True)
    source_word_dropout: float = _setting(float, 0.0, "probability of replacing each German training token by <UNK> "
                                          "(word dropout, Sennrich & Zhang 2019)", low=0.0, high=1.0,
                                          high_open=True, resumable=True)
    target_word_dropout: float = _setting(float, 0.0, "probability of replacing each English decoder-input token by "
                                          "<UNK> in training (the predicted labels stay)", low=0.0, high=1.0,
                                          high_open=True, resumable=True)
    phrase_tag: bool = _setting(bool, False, "start the German of each dictionary phrase with a tag (the <START> "
                                "piece) so the model can tell phrases from sentences; validation and translation "
                                "never carry it", resumable=True)
    # Extra training text beside the corpus, e.g. the Debian corpus of tools/build_parallel_corpus.py.
    extra_corpus: str | None = _setting(str, None, "a tsv of extra TRAINING pairs (german<TAB>english<TAB>"
                                        "source...), e.g. .corpus/debian-de-en.tsv from tools/build_parallel_corpus."
                                        "py; never held out, and its pairs whose German or English is a valid or "
                                        "test sentence of --corpus are dropped", resumable=True)
    extra_per_epoch: int | None = _setting(int, 100000, "--extra-corpus pairs drawn per epoch beside the corpus's "
                                           "sentences and phrases (None or 0: all of them)", low=1, high=100_000_000,
                                           resumable=True,
                                           old_unset=_is_zero)
    extra_sources: str | None = _setting(str, None, "comma-separated sources (third column) of --extra-corpus to "
                                         "train on, each with an optional weight that multiplies how often its "
                                         "pairs are drawn per epoch, e.g. games:3,libreoffice-help,software:0.2 "
                                         "(None or empty: all, unweighted)",
                                         resumable=True, old_unset=_is_empty)
    extra_tag: bool = _setting(bool, False, "start the German of each --extra-corpus pair with a domain tag (the "
                               "<END> piece, which no source otherwise holds), so the model can tell that text from "
                               "the dictionary's (Kobus et al. 2017); translation never carries it", resumable=True)

    def __post_init__(self):
        for setting in fields(self):
            value = getattr(self, setting.name)
            if setting.metadata["type"] is str and isinstance(value, os.PathLike):
                setattr(self, setting.name, value := os.fspath(value))
            if setting.name in INPUT_PATHS:
                setattr(self, setting.name, value := absolute_input(value))
            _check_setting(setting, value)
        extra_source_weights(self.extra_sources)
        if self.num_heads >= 1 and self.embed_dim % self.num_heads:
            raise ValueError(f"--num-heads {self.num_heads} must divide --embed-dim {self.embed_dim}")
        if self.share_all_embeddings and self.joint_vocab_size is None and self.init_from is None:
            raise ValueError("--share-all-embeddings needs one vocabulary for German and English: add "
                             "--joint-vocab-size N (e.g. 8000), or leave --share-all-embeddings out")
        try:
            torch.device(self.device)
        except RuntimeError:
            raise ValueError(f"--device {self.device!r} is not a device: use cpu, cuda or cuda:N") from None


# The fields that name input files: stored absolute, so that a run resumes from any working folder.
INPUT_PATHS = ("corpus", "extra_corpus", "init_from", "dev_corpus")


def names_a_file(value):
    """Whether the value of an input field names a file (not None, "", standard input or --dev-corpus none)."""
    return bool(value) and not is_stdin(value) and value != NO_DEV_CORPUS


def absolute_input(path):
    """``path`` made absolute from the working folder where it names a file (else kept as it is)."""
    return os.path.abspath(path) if names_a_file(path) else path


def extra_source_weights(text):
    """The sources that --extra-sources names, each with its weight, in the order given: 'games:3,docs,software:0.2'
    -> {'games': 3.0, 'docs': 1.0, 'software': 0.2}; None or '' -> {} (every source, unweighted). A weight multiplies
    how often each pair of its source is drawn per epoch. Raises ValueError naming an item that is not NAME or
    NAME:WEIGHT with a positive, finite weight."""
    weights = {}
    for item in (text or "").split(","):
        name, colon, weight = (part.strip() for part in item.partition(":"))
        if not name and not colon:
            continue
        try:
            value = float(weight) if colon else 1.0
        except ValueError:
            value = math.nan
        if not name or ":" in weight or not math.isfinite(value) or value <= 0:
            raise ValueError(f"--extra-sources {text}: {item.strip()!r} is not SOURCE or SOURCE:WEIGHT with a "
                             "positive weight, e.g. games:3,docs,software:0.2")
        weights[name] = value
    return weights


def dev_corpus_path(config):
    """The file of a run's second dev set: ``config.dev_corpus``, the everyday set when it is None, None when it is
    "none"."""
    if config.dev_corpus == NO_DEV_CORPUS:
        return None
    return config.dev_corpus or EVERYDAY_PATH


def flag(name):
    """The command-line flag of a TrainConfig field: 'max_steps' -> '--max-steps'."""
    return "--" + name.replace("_", "-")


def _check_setting(setting, value):
    """Raise ValueError naming the flag unless ``value`` has the field's type and lies in its range or choices
    (None, unset, where the field is optional)."""
    kind, meta = setting.metadata["type"], setting.metadata
    if value is None and meta["optional"]:
        return
    if kind in (int, float):
        check_range(flag(setting.name), value, meta["low"], meta["high"], meta["low_open"], meta["high_open"],
                    integer=kind is int)
    elif not isinstance(value, kind):
        raise ValueError(f"{flag(setting.name)} must be {'True or False' if kind is bool else 'a string'}, got "
                         f"{value!r}")
    if meta["choices"] is not None and value not in meta["choices"]:
        raise ValueError(f"{flag(setting.name)} must be one of {', '.join(meta['choices'])}, got {value!r}")


def _is_old_unset(setting, value):
    """Whether ``value`` is what meant "unset" for this field before None did (0 for ffn_dim, ...)."""
    test, kind = setting.metadata["old_unset"], setting.metadata["type"]
    if test is None or isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else kind):
        return False
    return test(value)


def without_old_unset(values):
    """A copy of ``values`` (a stored config dict) with the old spellings of "unset" (0, a negative dropout, '')
    turned into None: the one place where configs saved before None meant unset are brought up to date."""
    settings = {setting.name: setting for setting in fields(TrainConfig)}
    return {name: None if name in settings and _is_old_unset(settings[name], value) else value
            for name, value in values.items()}


def flag_type(setting):
    """The argparse ``type`` of a TrainConfig field's flag: its range (lib.cli's int_range / float_range), with the
    field's old spelling of "unset" (e.g. --ffn-dim 0) read as None."""
    meta, kind = setting.metadata, setting.metadata["type"]
    if kind is int:
        ranged, plain = int_range(meta["low"], meta["high"]), int_range(None)
    elif kind is float:
        ranged, plain = float_range(meta["low"], meta["high"], meta["low_open"], meta["high_open"]), float_range()
    else:
        ranged = plain = kind
    if meta["old_unset"] is None:
        return ranged

    def parse(text):
        return None if _is_old_unset(setting, plain(text)) else ranged(text)
    parse.__name__ = ranged.__name__
    return parse


def add_flags(group, table, skip=()):
    """Add a flag for each TrainConfig field not named in ``skip`` to the argparse ``group``, through ``table`` (a
    lib.cli.FlagTable) and absent from the parsed arguments unless given: help from the field's metadata, the value
    checked by :func:`flag_type`; bools get --name / --no-name."""
    for setting in fields(TrainConfig):
        if setting.name in skip:
            continue
        meta = setting.metadata
        options = {"help": f"{meta['help']} (default {setting.default})"}
        if meta["type"] is bool:
            table.add(group, flag(setting.name), action=argparse.BooleanOptionalAction, **options)
        else:
            table.add(group, flag(setting.name), type=flag_type(setting), choices=meta["choices"],
                      metavar=None if meta["choices"] else setting.name.upper(), **options)


# What a resumed run may change (its length, devices, folder, learning rate and regularisation, data mix); all else
# (the model's shape, vocabularies, corpus, seed, schedule) is fixed by the run's checkpoint.
RESUMABLE_FIELDS = tuple(setting.name for setting in fields(TrainConfig) if setting.metadata["resumable"])


def resumed_config(saved, overrides, path):
    """The config of a resumed run: ``saved`` (the checkpoint's config dict, old spellings of "unset" read as None)
    with ``overrides`` applied.

    A field not in RESUMABLE_FIELDS may only be given with its saved value; others raise one ValueError naming them.
    """
    names = {setting.name for setting in fields(TrainConfig)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise ValueError(f"unknown training setting(s) {', '.join(unknown)}: TrainConfig has no such field")
    saved = without_old_unset(saved)
    values = {setting.name: saved.get(setting.name, setting.default) for setting in fields(TrainConfig)}
    _check_relative_inputs(values, overrides, path)

    def same(name, first, second):
        return absolute_input(first) == absolute_input(second) if name in INPUT_PATHS else first == second
    fixed = [name for name, value in overrides.items()
             if name not in RESUMABLE_FIELDS and not same(name, value, values[name])]
    if fixed:
        given = ", ".join(f"{flag(name)} {overrides[name]}" for name in fixed)
        kept = ", ".join(f"{flag(name)} {values[name]}" for name in fixed)
        raise ValueError(f"{given}: fixed by the run's checkpoint {path} ({kept}), so a resumed run cannot change "
                         f"{'it' if len(fixed) == 1 else 'them'}. Leave {'it' if len(fixed) == 1 else 'them'} out, "
                         "or start a new run in another --out-dir (--init-from keeps the weights).")
    values.update(overrides)
    return TrainConfig(**values)


def _check_relative_inputs(values, overrides, path):
    """Raise a ValueError for an input file that a run stored before paths were kept absolute names relative to the
    folder it was started in, when no such file is found from this working folder (unless a resumable one is
    given anew)."""
    for name in INPUT_PATHS:
        value = values[name]
        if name in overrides and name in RESUMABLE_FIELDS:
            continue
        if names_a_file(value) and not os.path.isabs(value) and not os.path.exists(value):
            raise ValueError(f"{flag(name)} {value} of the run's checkpoint {path} is relative to the folder the run "
                             f"was started in, and {os.path.abspath(value)} does not exist: resume from that folder "
                             "(the run then keeps absolute paths)")


def native_bfloat16(device):
    """Whether ``device`` (e.g. 'cpu', 'cuda:0') computes bfloat16 natively: a CUDA GPU that supports it, or a CPU
    whose flags include avx512_bf16 or amx_bf16 (read from /proc/cpuinfo, so False on a system without it, such as
    macOS or Windows)."""
    device = torch.device(device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            return False
        with torch.cuda.device(device):
            return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and bool({"avx512_bf16", "amx_bf16"} & cpu_flags())


def read_cpuinfo():
    """The text of /proc/cpuinfo, or '' where there is none (not Linux)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as file:
            return file.read()
    except OSError:
        return ""


def cpu_flags():
    """The CPU's feature flags as the Linux kernel lists them ('flags' lines of /proc/cpuinfo), e.g. {'avx2', ...}."""
    flags = set()
    for line in read_cpuinfo().splitlines():
        name, _, value = line.partition(":")
        if name.strip() == "flags":
            flags.update(value.split())
    return flags


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

# The model's shape, which a run started with init_from takes from the translator.
SHAPE_FIELDS = ("max_len", "embed_dim", "enc_layers", "dec_layers", "num_heads", "pre_norm", "tie_embeddings",
                "ffn_dim", "scale_embeddings", "share_all_embeddings")
# TransformerModel's arguments that come from the config as they are (besides the vocabulary sizes).
MODEL_FIELDS = SHAPE_FIELDS + ("dropout", "attention_dropout", "activation_dropout", "decoder_layerdrop")


def model_kwargs(config, en_vocab_size, de_vocab_size):
    """TransformerModel's keyword arguments for ``config`` and the vocabulary sizes."""
    return dict(en_vocab_size=en_vocab_size, de_vocab_size=de_vocab_size,
                **{name: getattr(config, name) for name in MODEL_FIELDS})


def build_model(config, data):
    """The TransformerModel ``config`` describes, for ``data``'s vocabularies (drawn from torch's global RNG)."""
    return TransformerModel(**model_kwargs(config, len(data.en_vocab), len(data.de_vocab)))


def shape_of(model):
    """The SHAPE_FIELDS of a built model, as TrainConfig values (TrainConfig's default where the model's stored
    config lacks one)."""
    saved = model.config()
    return {name: saved.get(name, getattr(TrainConfig, name)) for name in SHAPE_FIELDS}
