"""Training the German-English translator: the training loop with periodic validation (loss, BLEU, chrF), atomic
checkpoints, resuming, and torch.distributed data parallelism.

The loop is built from small pieces, each testable on its own (read them in this order):

- :class:`~lib.training.config.TrainConfig` (lib/training/config.py): every setting of a run, with its help text,
  range and whether a resumed run may change it; the learning-rate schedule; the model a config describes.
- :func:`~lib.training.data.prepare_data` and :func:`~lib.training.data.epoch_batches` (lib/training/data.py): the
  corpus tokenized, and each epoch's length-bucketed batches.
- :func:`start_run`: set-up or resume; returns the :class:`~lib.training.state.TrainingState` (model, optimizer, step,
  epoch, ...); saving and restoring it live in lib/training/state.py.
- :func:`train_step`: one optimizer step on one batch (word dropout, learning rate, loss, clipping).
- :func:`~lib.training.stopping.stop_reason` (lib/training/stopping.py): max_steps, max_minutes, a STOP file, or
  Ctrl-C; agreed on by all processes; signals, a non-finite loss and failed writes end the run there too.
- :func:`validate_and_save`: validation record, log line, best.pth, snapshot, last.pth.
- :func:`train`: the loop that ties them together (``_run``).

Launched with ``torchrun`` (RANK / WORLD_SIZE in the environment; lib/training/distributed.py) it trains with
DistributedDataParallel: ``gloo`` on the CPU, ``nccl`` on GPUs; every rank builds the same deterministic batches and
takes every world_size-th one; rank 0 alone validates, writes checkpoints, logs and shows progress.
"""
import json
import os
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field

import torch
import torch.distributed as dist
import torch.nn.functional as F
from tqdm.auto import tqdm

from lib.checkpoint import load_checkpoint
from lib.training.distributed import init_distributed
from lib.training.run_folder import BEST_FILE, RunLock, check_new_run, check_resumable, clear_run
from lib.translation.tokenizer import PAD, Vocabulary
from lib.training.config import TrainConfig, build_model, learning_rate, resumed_config, shape_of
from lib.training.data import check_training_inputs, collate, prepare_data, rank_batches, training_batch
from lib.training.log import append_record, reconcile_log
from lib.translation.translator import Translator
from lib.training.state import (LAST, NO_VALIDATION_SENTENCES, TrainingState, check_data, check_init_shape,
                                check_out_dir, check_training_state, gather_rng_states, restore, rng_state, save_last,
                                vocabulary_notice)
from lib.training.stopping import (GracefulInterrupt, TrainingInterrupted, check_finite, saving, stop_message,
                                   stop_reason)


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


def validate(model, data, config, device):
    """Validation loss, BLEU / chrF of greedy translations of the first ``eval_sentences`` valid pairs, and those of
    the second dev set's first ``eval_sentences`` pairs (dev_bleu / dev_chrf; only with a dev set)."""
    if not data.splits["valid"]:
        raise ValueError(NO_VALIDATION_SENTENCES)
    loss = validation_loss(model, data, config, device)
    translator = Translator(model, data.de_vocab, data.en_vocab)
    bleu, chrf, _ = translator.evaluate(data.splits["valid"][:config.eval_sentences])
    scores = {"valid_loss": round(loss, 4), "valid_bleu": round(bleu, 2), "valid_chrf": round(chrf, 2)}
    if data.dev_pairs:
        bleu, chrf, _ = translator.evaluate(data.dev_pairs[:config.eval_sentences])
        scores.update(dev_bleu=round(bleu, 2), dev_chrf=round(chrf, 2))
    model.train()
    return scores


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
    check_training_inputs(config, resuming=checkpoint is not None)
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


# ---- one step, validating -----------------------------------------------------------------------------------------


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
            Translator(model, data.de_vocab, data.en_vocab, info).save(os.path.join(config.out_dir, BEST_FILE))
        save_snapshot(Translator(model, data.de_vocab, data.en_vocab, {"step": state.step, **record}),
                      config.out_dir, state.step, config.keep_snapshots)
        save_last(state, rng_states)
        append_record(config.out_dir, record)
    if state.place.world_size > 1:
        dist.barrier()
    return record


# The ways a process is asked to stop that end a run gracefully: Ctrl-C, kill / timeout / schedulers, a closed terminal.


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
    if resume:
        check_resumable(config.out_dir)
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
                repaired = reconcile_log(state.config.out_dir, state.step, state.records)
                if repaired:
                    print(repaired, flush=True)
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
                            with saving(state):
                                save_last(state, rng_states)
                        raise TrainingInterrupted(state.step, state.last_path, config.out_dir, interrupt.signum)
                    if state.step % config.eval_every == 0 or reason:
                        with saving(state):
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
            with saving(state):
                save_last(state, [state.rng] if place.world_size == 1 else None)
        raise TrainingInterrupted(state.step, state.last_path, config.out_dir) from None
    finally:
        bar.close()
    return state.records
