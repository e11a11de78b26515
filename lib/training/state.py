"""A training run's state: what it carries from step to step (:class:`TrainingState`), the checks of a run folder, a
last.pth and the data before any work, and saving and restoring it all (weights, optimizer, position, records, every
process's random number generators) so that a resumed run continues exactly."""
import os
import time
from dataclasses import asdict, dataclass, field, fields

import torch
import torch.distributed as dist

from lib.checkpoint import save_atomic
from lib.checks import Allowed, check_stored
from lib.files import check_output_folder
from lib.training.distributed import Distributed
from lib.training.config import RESUMABLE_FIELDS, SHAPE_FIELDS, TrainConfig, flag, without_old_unset
from lib.training.data import PreparedData
from lib.transformer import TransformerModel
from lib.translation.translator import CHECKPOINT_FORMAT
from lib.training.run_folder import LAST_FILE as LAST
from lib.training.stopping import STOP_FILE

NO_VALIDATION_SENTENCES = ("the corpus has no validation sentences: it needs full sentences (a few hundred or more) "
                           "so that about 5% of them are held out")


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
    check_output_folder(out_dir, "--out-dir")
    stop = os.path.join(out_dir, STOP_FILE)
    if os.path.exists(stop):
        raise ValueError(f"{stop} exists: it stopped the last run in this folder and would stop this one within 10 "
                         f"steps. Delete it (rm {stop}) and start again.")


# What last.pth holds (save_last).


TRAINING_STATE_KEYS = ("config", "model", "optimizer", "step", "epoch", "batch_index", "records", "best_bleu",
                       "elapsed", "de_vocab", "en_vocab")
# The stored settings that a resumed run cannot change, with their flags' ranges (a resumable one out of range is
# reported by its flag, which can replace it).
FIXED_SETTINGS = {setting.name: Allowed.from_metadata(setting.metadata) for setting in fields(TrainConfig)
                  if setting.name not in RESUMABLE_FIELDS}


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
    check_stored(without_old_unset(checkpoint["config"]), FIXED_SETTINGS,
                 f"{path} is a damaged training state: its stored config", "it cannot be resumed: start a new run in "
                 "another --out-dir (--init-from its best.pth keeps the weights)")


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
