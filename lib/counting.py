"""Explicit attention that counts: how often does each digit occur in a sequence?

The model has one learned query per digit; each query attends over the positions of the sequence, and the attended
value goes through a small classifier over the possible counts 0..sequence_length.

Why the sigmoid attention can count and the softmax cannot: with one-hot inputs every position holding digit d has
the same key k_d and value v_d, so the attended value of query i is a sum of identical terms,

    attended_i = sum_positions sigmoid(q_i . k_pos / sqrt(h)) v_pos = sum_d count_d * sigmoid(q_i . k_d / sqrt(h)) v_d,

linear in the digit counts: it grows with the number of times a digit occurs, and the output layer reads off that
magnitude. A softmax divides each weight by the sum over the positions, so n positions of one digit get 1/n each and
the attended value is the same whether the digit occurs once or seven times: only proportions are left.
(``tests/test_counting.py`` checks both statements on a model.)
"""
import math
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from lib.attention import ACTIVATIONS, attention_function
from lib.checkpoint import load_checkpoint, save_atomic
from lib.checks import Allowed, check_stored

# Limits of CountingConfig's fields (checked when one is made, so the library and train.py refuse the same values).
# Sequences of up to 20 digits train to test accuracy 0.999-1.0 with the exercise's settings (seeds 0 and 1);
# measured beyond that: about 0.71 at 25 and 30 digits, 0.33-0.69 at 50 and 70, 0.07-0.64 at 100 and 150 (seeds 0-2),
# 0.03 at 1000, and no better with hidden 16-64 or 10,000 steps (0.95 at best, at 50). Longer sequences are refused.
MAX_SEQUENCE_LENGTH = 20
LIMITS = {  # field: (lowest, highest) allowed value
    "sequence_length": (1, MAX_SEQUENCE_LENGTH),
    "vocab_size": (1, 100),
    "hidden": (2, 1024),  # a LayerNorm over one feature always outputs its bias: nothing left to learn from
    "batch_size": (1, 16384),
    "steps": (1, 1_000_000),
    "patience": (0, 1_000_000),
    "seed": (0, 2 ** 31 - 2),  # the test sequences use seed + 1
    "test_samples": (1, 1_000_000),
    "num_threads": (0, 256),
}
MAX_LR = 1.0
# The most numbers in one (sequences, sequence_length, hidden) tensor of a training step (a 128 MiB float32 tensor):
# each field within LIMITS, their product bounds the step's memory (a few dozen such tensors) to a laptop's.
MAX_STEP_ELEMENTS = 2 ** 25
# What each field may be: LIMITS, lr in (0, MAX_LR], activation one of ACTIVATIONS. A loaded checkpoint's stored
# config is checked against this before a model is built from it.
ALLOWED = {**{name: Allowed(int, low, high) for name, (low, high) in LIMITS.items()},
           "lr": Allowed(float, 0, MAX_LR, low_open=True), "activation": Allowed(str, choices=ACTIVATIONS)}
PARAMETER_NAMES = ("query", "norm.weight", "norm.bias", "key.weight", "key.bias", "value.weight", "value.bias",
                   "out.weight", "out.bias")  # the keys of CountingModel's state_dict


COUNTING_HINT = "run `python train.py` first to train and save the counting model"


class CountingModel(nn.Module):
    """Count the occurrences of each of ``vocab_size`` digits in a sequence of ``sequence_length`` digits.

    hidden: width of the queries, keys and values.
    activation: the attention's squashing function, "sigmoid" (the exercise's) or "softmax" (its bonus question).
    Parameters are created in the exercise's order (its seeded values depend on it).
    """

    def __init__(self, vocab_size, sequence_length, hidden, activation="sigmoid"):
        super().__init__()
        self.hidden = hidden
        self.activation = activation
        self.norm = nn.LayerNorm(hidden)
        self.query = nn.Parameter(torch.rand(1, vocab_size, hidden))
        self.key = nn.Linear(vocab_size, hidden)
        self.value = nn.Linear(vocab_size, hidden)
        self.out = nn.Linear(hidden, sequence_length + 1)

    def forward(self, x):
        """x: one-hot (batch, sequence_length, vocab_size).

        Returns (logits over counts (batch, vocab_size, sequence_length + 1),
        attention weights (batch, vocab_size, sequence_length)).
        """
        _check_input(x, vocab_size=self.query.shape[1])
        query = _query_for_each_item(self.query, x.shape[0])
        keys = self.key(x)
        values = self.value(x)
        attended, weights = attention_function(query, keys, values, self.hidden, activation=self.activation)
        return self.out(self.norm(attended + query)), weights


def _check_input(x, vocab_size):
    """Raise a ValueError unless ``x`` has the shape of one-hot sequences (batch, sequence_length, vocab_size)."""
    if x.dim() != 3 or x.shape[-1] != vocab_size:
        raise ValueError(f"x must be one-hot (batch, sequence_length, {vocab_size}), got shape {tuple(x.shape)}")


def _query_for_each_item(query, batch_size):
    """The shared query (1, vocab, hidden) repeated over the batch without a copy: (batch, vocab, hidden).

    The same values as ``query.repeat(batch_size, 1, 1)``; ``attention_function`` sees the stride-0 batch and takes
    one matrix product for all items instead of a batched one.
    """
    return query.expand(batch_size, -1, -1)


def make_counting_data(num_samples, sequence_length, vocab_size, generator=None):
    """Draw ``num_samples`` sequences of digits uniformly from ``range(vocab_size)``.

    Returns (one-hot float (num_samples, sequence_length, vocab_size), digits (num_samples, sequence_length) long,
    counts (num_samples, vocab_size) long: how often each digit occurs).
    """
    digits = torch.randint(vocab_size, (num_samples, sequence_length), generator=generator)
    one_hot = F.one_hot(digits, vocab_size).float()
    counts = one_hot.sum(dim=1).long()
    return one_hot, digits, counts


@dataclass
class CountingConfig:
    """The exercise's training configuration (the defaults); values outside ``LIMITS`` raise a ValueError."""
    sequence_length: int = 10  # digits per sequence
    vocab_size: int = 3  # distinct digits, 0 to vocab_size - 1
    hidden: int = 8  # width of the queries, keys and values
    batch_size: int = 256  # sequences per training step, drawn fresh for each step
    steps: int = 2500  # training steps
    lr: float = 1e-2  # Adam's learning rate
    patience: int = 250  # ReduceLROnPlateau's patience in steps, stepped on the training loss
    seed: int = 0  # seed of the weights and the training data; the test sequences use seed + 1
    activation: str = "sigmoid"  # the attention's squashing function: "sigmoid" or "softmax"
    test_samples: int = 320  # fresh test sequences
    num_threads: int = 1  # torch threads while training; the model is tiny, so one avoids threading overhead (0: keep)

    def __post_init__(self):
        _check_config(self)


def _check_config(config):
    """Raise a ValueError naming the first field of ``config`` that ``ALLOWED`` does not allow."""
    for name, allowed in ALLOWED.items():
        problem = allowed.problem(getattr(config, name))
        if problem:
            hint = " (longer sequences do not train to a useful accuracy)" if name == "sequence_length" else ""
            raise ValueError(f"{name} {problem}{hint}")
    elements = config.batch_size * config.sequence_length * config.hidden
    if elements > MAX_STEP_ELEMENTS:
        raise ValueError(f"batch_size x sequence_length x hidden is {config.batch_size} x {config.sequence_length} x "
                         f"{config.hidden} = {elements:,} numbers per tensor of a training step, above "
                         f"{MAX_STEP_ELEMENTS:,} (a training step would need several GB); lower the batch size or "
                         f"the hidden width")


def counting_loss(logits, counts):
    """Mean cross-entropy over the counts: logits (batch, vocab, sequence_length + 1), counts (batch, vocab) long.

    Equal to ``F.cross_entropy(logits.reshape(-1, classes), counts.reshape(-1))`` (tested).
    """
    return F.nll_loss(_log_softmax_over_short_rows(logits.reshape(-1, logits.shape[-1])), counts.reshape(-1))


def _log_softmax_over_short_rows(flat):
    """``torch.log_softmax(flat, dim=-1)`` for (rows, classes), computed on the transpose over dim 0: torch's CPU
    kernel over a short last dimension (11 classes) is about eight times slower, a tenth of a training step."""
    return torch.log_softmax(flat.T, dim=0).T


def counting_test_data(config):
    """The ``config.test_samples`` fresh test sequences (seed ``config.seed + 1``): (one-hot, digits, counts)."""
    generator = torch.Generator().manual_seed(config.seed + 1)
    return make_counting_data(config.test_samples, config.sequence_length, config.vocab_size, generator)


def evaluate_counting_model(model, config):
    """Test loss and accuracy (floats) of ``model`` on ``counting_test_data(config)``, run ``config.batch_size``
    sequences at a time (memory that of a training step, whatever ``test_samples``)."""
    one_hot, _, counts = counting_test_data(config)
    logits = torch.cat([_logits_without_gradients(model, chunk) for chunk in one_hot.split(config.batch_size)])
    return counting_loss(logits, counts).item(), (logits.argmax(dim=-1) == counts).float().mean().item()


def _logits_without_gradients(model, one_hot):
    """``model(one_hot)``'s logits (batch, vocab, sequence_length + 1) without recording the autograd graph."""
    with torch.no_grad():
        logits, _ = model(one_hot)
    return logits


def counting_batches(config, generator, chunk_numbers=2 ** 20):
    """Yield ``config.steps`` fresh training batches (one-hot (batch, sequence_length, vocab) float, counts (batch,
    vocab) long), drawn many steps at a time with a few vectorised calls: as many as fit ``chunk_numbers`` one-hot
    numbers (136 steps of the exercise's configuration: 4 MB), at least one."""
    numbers_per_step = config.batch_size * config.sequence_length * config.vocab_size
    chunk_steps = max(1, chunk_numbers // numbers_per_step)
    for first in range(0, config.steps, chunk_steps):
        steps = min(chunk_steps, config.steps - first)
        digits = torch.randint(config.vocab_size, (steps, config.batch_size, config.sequence_length),
                               generator=generator)
        one_hot = F.one_hot(digits, config.vocab_size).float()
        yield from zip(one_hot, one_hot.sum(dim=2).long())


@contextmanager
def _few_threads_and_no_denormals(num_threads):
    """Use ``num_threads`` torch threads (0: keep) and flush denormal floats to zero; restore both afterwards."""
    previous_threads = torch.get_num_threads()
    if num_threads > 0:
        torch.set_num_threads(num_threads)
    torch.set_flush_denormal(True)  # a softmax of very confident logits otherwise hits a slow path
    try:
        yield
    finally:
        torch.set_flush_denormal(False)
        torch.set_num_threads(previous_threads)


def train_counting_model(config=CountingConfig(), progress=True):
    """Train a CountingModel as the exercise does: autograd, ``torch.optim.Adam`` and ``ReduceLROnPlateau`` stepped
    on the training loss, a fresh batch per step (``counting_batches``, seeded by ``config.seed``).

    Returns (model, final training loss, test accuracy on ``config.test_samples`` fresh sequences).
    """
    with _few_threads_and_no_denormals(config.num_threads):
        torch.manual_seed(config.seed)
        model = CountingModel(config.vocab_size, config.sequence_length, config.hidden, activation=config.activation)
        optimizer = _fused_adam(model.parameters(), config.lr)
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, patience=config.patience)
        batches = counting_batches(config, torch.Generator().manual_seed(config.seed))
        bar = tqdm(batches, total=config.steps, desc="training", disable=not progress)
        loss = math.nan
        for step, (one_hot, counts) in enumerate(bar):
            logits, _ = model(one_hot)
            loss_tensor = counting_loss(logits, counts)
            optimizer.zero_grad()
            loss_tensor.backward()
            optimizer.step()
            loss = loss_tensor.item()
            scheduler.step(loss)
            if step % 50 == 0:
                bar.set_postfix(loss=f"{loss:.4f}")
        _, accuracy = evaluate_counting_model(model, config)
    return model, loss, accuracy


def _fused_adam(parameters, lr):
    """``torch.optim.Adam`` as torch's one-kernel variant: the same update rule (tested), a quarter of the default's
    per-step overhead."""
    return torch.optim.Adam(parameters, lr=lr, fused=True)


def save_counting_model(model, config, path):
    """Write ``{"state_dict": ..., "config": asdict(config)}`` to ``path`` atomically."""
    save_atomic({"state_dict": model.state_dict(), "config": asdict(config)}, path)


def load_counting_model(path):
    """Load a model written by ``save_counting_model`` (or a bare state_dict, as the exercise saved it).

    Returns (model in eval mode, CountingConfig). A missing file raises FileNotFoundError saying to run train.py;
    a checkpoint that is not a counting model (e.g. the translator's) raises a ValueError saying so.
    """
    checkpoint = load_checkpoint(path, hint=COUNTING_HINT[0].upper() + COUNTING_HINT[1:] + ".",
                                 what="counting model checkpoint")
    saved = checkpoint if isinstance(checkpoint, dict) else {}
    state_dict = saved.get("state_dict", saved)  # the state_dict alone is the exercise's format
    if not isinstance(state_dict, dict) or set(state_dict) != set(PARAMETER_NAMES) \
            or not all(isinstance(tensor, torch.Tensor) for tensor in state_dict.values()):
        holds = ", ".join(map(str, list(saved)[:6])) if saved else type(checkpoint).__name__
        raise ValueError(f"{path} is not a counting model checkpoint (it holds {holds}); give one written by train.py")
    settings = saved.get("config", {}) if state_dict is not saved else {}
    known = {field.name for field in fields(CountingConfig)}
    settings = {name: value for name, value in settings.items() if name in known} if isinstance(settings, dict) else {}
    damaged, advice = f"{path} is a damaged counting model checkpoint:", "train a new one with 'python train.py'"
    check_stored(settings, ALLOWED, f"{damaged} its stored config", advice)
    try:  # the sizes follow from the shapes
        sizes = dict(vocab_size=state_dict["query"].shape[1], hidden=state_dict["query"].shape[2],
                     sequence_length=state_dict["out.weight"].shape[0] - 1)
    except IndexError as error:
        raise ValueError(f"{path} is not a counting model this library can load ({error}); give one written by "
                         "train.py") from None
    check_stored(sizes, ALLOWED, f"{damaged} its weights' shapes give", advice)
    try:
        config = CountingConfig(**{**settings, **sizes})
        model = CountingModel(config.vocab_size, config.sequence_length, config.hidden, activation=config.activation)
        model.load_state_dict(state_dict)
    except (ValueError, RuntimeError) as error:
        raise ValueError(f"{path} is not a counting model this library can load ({error}); give one written by "
                         "train.py") from None
    return model.eval(), config
