"""Training the German-English translator: the training loop with periodic validation (loss, BLEU, chrF), atomic
checkpoints, resuming, and torch.distributed data parallelism.

The loop is built from small pieces, each testable on its own (read them in this order):

- :class:`~lib.training.config.TrainConfig` (lib/training/config.py): every setting of a run, with its help text,
  range and whether a resumed run may change it; the learning-rate schedule; the model a config describes.
- :func:`~lib.training.data.prepare_data` and :func:`~lib.training.data.epoch_batches` (lib/training/data.py): the
  corpus tokenized, and each epoch's length-bucketed batches.
- :func:`start_run`: set-up or resume; returns the :class:`TrainingState` (model, optimizer, step, epoch, ...).
- :func:`train_step`: one optimizer step on one batch (word dropout, learning rate, loss, clipping).
- :func:`stop_reason`: max_steps, max_minutes, a STOP file, or Ctrl-C; agreed on by all processes.
- :func:`validate_and_save`: validation record, log line, best.pth, snapshot, last.pth.
- :func:`train`: the loop that ties them together (``_run``).

Launched with ``torchrun`` (RANK / WORLD_SIZE in the environment; lib/training/distributed.py) it trains with
DistributedDataParallel: ``gloo`` on the CPU, ``nccl`` on GPUs; every rank builds the same deterministic batches and
takes every world_size-th one; rank 0 alone validates, writes checkpoints, logs and shows progress.
"""
import json
import math
import os
import signal
import sys
import threading
import time
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field

import torch
import torch.distributed as dist
import torch.nn.functional as F
from tqdm.auto import tqdm

from lib.checkpoint import load_checkpoint, save_atomic
from lib.cli import check_writable_folder
from lib.training.distributed import Distributed, init_distributed
from lib.training.run_folder import RunLock, check_new_run, clear_run
from lib.translation.tokenizer import PAD, Vocabulary
from lib.training.config import (SHAPE_FIELDS, TrainConfig, build_model, flag, learning_rate, resumed_config,
                                 shape_of)
from lib.training.data import (PreparedData, check_extra_corpus, collate, prepare_data, rank_batches,
                               training_batch)
from lib.training.log import append_record, reconcile_log
from lib.transformer import TransformerModel
from lib.translation.translator import CHECKPOINT_FORMAT, Translator

STOP_FILE = "STOP"
LAST = "last.pth"


def translation_loss(model, source, decoder_input, decoder_target, label_smoothing=0.0):
    """Mean cross-entropy per target token (padding ignored). Returns (loss, number of target tokens)."""
    logits, _ = model(source, decoder_input, src_padding_mask=source == PAD, need_weights=False)
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), decoder_target.reshape(-1),
                           ignore_index=PAD, label_smoothing=label_smoothing)
    return loss, int((decoder_target != PAD).sum())


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


NO_VALIDATION_SENTENCES = ("the corpus has no validation sentences: it needs full sentences (a few hundred or more) "
                           "so that about 5% of them are held out")


def validate(model, data, config, device):
    """Validation loss, and BLEU / chrF of greedy translations of the first ``eval_sentences`` valid pairs."""
    if not data.splits["valid"]:
        raise ValueError(NO_VALIDATION_SENTENCES)
    loss = validation_loss(model, data, config, device)
    translator = Translator(model, data.de_vocab, data.en_vocab)
    bleu, chrf, _ = translator.evaluate(data.splits["valid"][:config.eval_sentences])
    model.train()
    return {"valid_loss": round(loss, 4), "valid_bleu": round(bleu, 2), "valid_chrf": round(chrf, 2)}


# ---- set-up and resume ------------------------------------------------------------------------------------------


def resume_command(out_dir):
    return f"python run_translation.py --train --resume --out-dir {out_dir}"


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C (or the signal ``signum``: SIGTERM, SIGHUP) ended training after ``path`` (last.pth) was saved at
    ``step``; str() is one line saying how to go on."""

    def __init__(self, step, path, out_dir, signum=signal.SIGINT):
        by = "" if signum == signal.SIGINT else f" by {signal.Signals(signum).name}"
        super().__init__(f"Interrupted{by} at step {step}: {path} saved; continue with: {resume_command(out_dir)}")
        self.step, self.path, self.out_dir, self.signum = step, path, out_dir, signum

    def __str__(self):
        return self.args[0]

    def __reduce__(self):  # pickled (e.g. between processes) with its own arguments, not the message
        return type(self), (self.step, self.path, self.out_dir, self.signum)


def unsaved_error(state, error):
    """The OSError to raise when a write into the out-dir failed mid-run: the folder, the step last.pth holds and how
    to resume."""
    folder = state.config.out_dir
    if state.saved_step is None:
        kept = "no last.pth was saved yet, so start the run again"
    else:
        kept = f"{state.last_path} is kept at step {state.saved_step}; continue with: {resume_command(folder)}"
    return OSError(f"cannot write into --out-dir {folder} ({error.strerror or error}): make it writable (or free "
                   f"space), then {kept}")


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
    saved_step: int = None  # the step that last.pth holds (None: none saved by this run yet)

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


# What last.pth holds (save_last).
TRAINING_STATE_KEYS = ("config", "model", "optimizer", "step", "epoch", "batch_index", "records", "best_bleu",
                       "elapsed", "de_vocab", "en_vocab")


def check_training_state(checkpoint, path):
    """Raise a ValueError saying what ``path`` is unless ``checkpoint`` is a training state that save_last wrote."""
    if isinstance(checkpoint, dict) and checkpoint.get("format") == CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is a translator (as best.pth is), not a training state: --resume continues from the "
                         f"last.pth a run writes; to go on from this translator's weights start a new run with "
                         f"--init-from {path} (in another --out-dir, or with --force)")
    missing = [key for key in TRAINING_STATE_KEYS if not isinstance(checkpoint, dict) or key not in checkpoint]
    if missing or not isinstance(checkpoint["config"], dict):
        raise ValueError(f"{path} is not a training state of run_translation.py --train (it has no "
                         f"{', '.join(missing[:3]) or 'run settings'}): --resume continues from the last.pth a run "
                         "writes; start a new run instead (with --force to delete this folder's run)")


def check_init_shape(given, shape, path):
    """Raise a ValueError naming the flags of ``given`` (the settings the user gave) that contradict ``shape``, the
    model shape of the translator a run starts from (--init-from)."""
    conflicts = [name for name in SHAPE_FIELDS if name in given and given[name] != shape[name]]
    if conflicts:
        them = "it" if len(conflicts) == 1 else "them"
        raise ValueError(f"{', '.join(f'{flag(name)} {given[name]}' for name in conflicts)}: a run started with "
                         f"--init-from {path} has that translator's shape "
                         f"({', '.join(f'{flag(name)} {shape[name]}' for name in conflicts)}). Leave {them} out, or "
                         "train a new model without --init-from.")


def check_data(data, config):
    """Raise a ValueError when ``data`` leaves nothing to train or validate on (e.g. a --max-len that no sentence
    fits in, or a corpus without full sentences)."""
    if not data.splits["valid"]:
        raise ValueError(NO_VALIDATION_SENTENCES)
    train_sentences = [pair for pair in data.splits["train"] if pair.sentence]
    if train_sentences and not data.train_sentences and not (data.train_phrases and config.phrases_per_epoch):
        what, count, split = "train on", len(train_sentences), "training"
    elif not data.valid_examples:
        what, count, split = "validate on", len(data.splits["valid"]), "validation"
    else:
        return
    raise ValueError(f"--max-len {config.max_len} leaves nothing to {what}: none of the {count} {split} sentences "
                     f"fits in {config.max_len} subword tokens per side; raise --max-len (the default is 48)")


def vocabulary_notice(state):
    """A line on each vocabulary of a new run that is smaller than its size setting (the most this corpus supports),
    else ''."""
    config, data = state.config, state.data
    if config.init_from or state.step:
        return ""
    sizes = ([("joint", "--joint-vocab-size", config.joint_vocab_size, data.de_vocab)] if config.joint_vocab_size else
             [("German", "--de-vocab-size", config.de_vocab_size, data.de_vocab),
              ("English", "--en-vocab-size", config.en_vocab_size, data.en_vocab)])
    return "".join(f"Notice: the {language} vocabulary has {len(vocabulary)} pieces, not {option} {size}: the most "
                   "this corpus supports\n" for language, option, size, vocabulary in sizes if len(vocabulary) < size)


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
        check_training_state(checkpoint, last_path)
        given = asdict(config) if overrides is None else {**overrides, "out_dir": config.out_dir}
        config = resumed_config(checkpoint["config"], given, last_path)
    check_out_dir(config.out_dir)
    check_extra_corpus(config)
    device = torch.device(f"cuda:{place.local_rank}" if config.device.startswith("cuda") and place.world_size > 1
                          else config.device)
    torch.manual_seed(config.seed)
    vocabularies, initial = None, None
    if checkpoint is not None:
        vocabularies = (Vocabulary.from_tensor(checkpoint["de_vocab"]), Vocabulary.from_tensor(checkpoint["en_vocab"]))
    elif config.init_from:  # a new run that starts from a translator's weights, vocabularies and shape
        initial = Translator.load(config.init_from)
        vocabularies = (initial.de_vocab, initial.en_vocab)
        shape = shape_of(initial.model)
        check_init_shape(overrides or {}, shape, config.init_from)
        config = TrainConfig(**{**asdict(config), **shape})
    data = prepare_data(config, vocabularies)
    check_data(data, config)
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
    state.saved_step = state.step
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
    state.saved_step = state.step


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


class NonFiniteLoss(RuntimeError):
    """The training loss became inf or NaN: the run ends without saving the damaged weights."""


def check_finite(loss, state):
    """Raise NonFiniteLoss when ``loss`` (of the step just taken) is not finite; last.pth and best.pth on disk still
    hold the last good state."""
    if not math.isfinite(loss):
        raise NonFiniteLoss(f"the training loss became {loss} at step {state.step} (a learning rate too large for "
                            f"this model, --lr {state.config.lr:g}?): the run stopped without saving it; "
                            f"{state.config.out_dir} keeps the last good state. Start again with a smaller --lr, or "
                            "--resume from the last saved step")


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
    """Validate (rank 0) and save: a record appended to state.records, best.pth when BLEU improved, a snapshot,
    last.pth, and then the record appended to log.jsonl (so that the log never runs ahead of last.pth). A collective
    call in a distributed run. Returns the record (None on other ranks)."""
    config, model, data = state.config, state.model, state.data
    rng_states = gather_rng_states(state)
    record = None
    if state.place.is_main:
        record = {"step": state.step, "epoch": state.epoch, "minutes": round(state.elapsed() / 60, 1),
                  "train_loss": round(window.mean_loss(), 4),
                  "tokens_per_s": round(window.tokens_per_s(state.place.world_size))}
        record.update(validate(model, data, config, state.device))
        state.records.append(record)
        if record["valid_bleu"] > state.best_bleu:
            state.best_bleu = record["valid_bleu"]
            info = {"step": state.step, "valid_bleu": record["valid_bleu"], "valid_chrf": record["valid_chrf"],
                    "minutes": record["minutes"]}
            Translator(model, data.de_vocab, data.en_vocab, info).save(os.path.join(config.out_dir, "best.pth"))
        save_snapshot(Translator(model, data.de_vocab, data.en_vocab, {"step": state.step, **record}),
                      config.out_dir, state.step, config.keep_snapshots)
        save_last(state, rng_states)
        append_record(config.out_dir, record)
    if state.place.world_size > 1:
        dist.barrier()
    return record


# The ways a process is asked to stop that end a run gracefully: Ctrl-C, kill / timeout / schedulers, a closed terminal.
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


class GracefulInterrupt:
    """While active (in the main thread), a first Ctrl-C, SIGTERM or SIGHUP only sets ``requested`` (and ``signum``),
    so that training ends cleanly after the current step; a second one acts as it did before (Ctrl-C raises
    KeyboardInterrupt at once, SIGTERM ends the process). A signal someone else handles or ignores is left alone."""

    def __init__(self, announce=True):
        self.announce, self.requested, self.signum, self.previous = announce, False, signal.SIGINT, {}

    def _handle(self, signum, frame):
        self.requested, self.signum = True, signum
        signal.signal(signum, self.previous.pop(signum))
        if self.announce:
            what = ("Ctrl-C", "press Ctrl-C") if signum == signal.SIGINT else (signal.Signals(signum).name, "send it")
            try:
                print(f"\n{what[0]}: saving last.pth after this step ({what[1]} again to quit without saving)",
                      file=sys.stderr, flush=True)
            except OSError:  # SIGHUP: the terminal is gone; save all the same
                pass

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                default = signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL
                if signal.getsignal(signum) is default:
                    self.previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc):
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
        self.previous = {}


@contextmanager
def _saving(state):
    """Turn an OSError of writing into the out-dir into unsaved_error's message."""
    try:
        yield
    except OSError as error:
        raise unsaved_error(state, error) from None


# ---- the training loop ------------------------------------------------------------------------------------------


def train(config, resume=False, progress=True, overrides=None, force=False):
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
    A new run refuses an ``out_dir`` that holds a run unless ``force``, which deletes that run's files once the new
    run is set up. ``out_dir/run.lock`` (lib/training/run_folder.py) keeps a second process from writing the same run.
    """
    place = init_distributed(config.device)
    try:
        with RunLock(config.out_dir) if place.is_main else nullcontext():
            if place.is_main and not resume:
                check_new_run(config.out_dir, force)
            state = start_run(config, place, resume, overrides)
            if resume and state.step >= state.config.max_steps:
                raise ValueError(f"the run in {config.out_dir} is at step {state.step} already, so --max-steps "
                                 f"{state.config.max_steps} leaves nothing to train: give a --max-steps above "
                                 f"{state.step} to continue it")
            if place.is_main and not resume:
                clear_run(config.out_dir)
            elif place.is_main:
                reconcile_log(state.config.out_dir, state.step, state.records)
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
              f"sentences, {len(state.data.train_phrases)} phrases, {len(state.data.train_extra)} extra pairs; "
              f"{sum(p.numel() for p in model.parameters()):,} "
              "parameters", flush=True)
        print(vocabulary_notice(state), end="", flush=True)
    deadline = time.time() + config.max_minutes * 60 if config.max_minutes else float("inf")  # this leg's minutes
    bar = tqdm(total=config.max_steps, initial=state.step, disable=not (progress and place.is_main),
               desc="training", dynamic_ncols=True)
    model.train()
    window = Window()
    try:
        with GracefulInterrupt(announce=place.is_main) as interrupt:
            while state.step < config.max_steps:
                batches = rank_batches(state.data, config, state.epoch, place)
                while state.batch_index < len(batches):
                    loss, tokens = train_step(state, batches[state.batch_index], forward_model, autocast)
                    check_finite(loss, state)
                    window.add(loss, tokens)
                    if place.is_main and state.step % 10 == 0:
                        bar.set_postfix(epoch=state.epoch, loss=f"{window.mean_loss():.3f}",
                                        tok_s=f"{window.tokens_per_s(place.world_size):.0f}")
                        bar.update(10)
                    reason = stop_reason(state, deadline, interrupt.requested)
                    if reason == "interrupted":
                        rng_states = gather_rng_states(state)
                        if place.is_main:
                            with _saving(state):
                                save_last(state, rng_states)
                        raise TrainingInterrupted(state.step, state.last_path, config.out_dir, interrupt.signum)
                    if state.step % config.eval_every == 0 or reason:
                        with _saving(state):
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
            with _saving(state):
                save_last(state, [state.rng] if place.world_size == 1 else None)
        raise TrainingInterrupted(state.step, state.last_path, config.out_dir) from None
    finally:
        bar.close()
    return state.records
