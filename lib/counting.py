"""Explicit attention that counts: how often does each digit occur in a sequence?

The model has one learned query per digit; each query attends over the positions of the sequence, and the attended
value goes through a small classifier over the possible counts 0..sequence_length.
"""
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from lib.attention import attention_function
from lib.checkpoint import load_checkpoint, save_atomic
from lib.counting_gradients import ClosedFormTraining, digit_counts


class CountingModel(nn.Module):
    """Count the occurrences of each of ``vocab_size`` digits in a sequence of ``sequence_length`` digits.

    Parameter creation order is the exercise's (seeded results depend on it). ``activation`` picks the attention's
    squashing function: "sigmoid" (the exercise) or "softmax" (its bonus question).
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
        if x.dim() != 3 or x.shape[-1] != self.query.shape[1]:
            raise ValueError(f"x must be one-hot (batch, sequence_length, {self.query.shape[1]}), "
                             f"got shape {tuple(x.shape)}")
        query = self.query.expand(x.shape[0], -1, -1)  # the same values as repeat, without the copy
        keys = self.key(x)
        values = self.value(x)
        attended, weights = attention_function(query, keys, values, self.hidden, activation=self.activation)
        return self.out(self.norm(attended + query)), weights


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
    """The exercise's training configuration."""
    sequence_length: int = 10
    vocab_size: int = 3
    hidden: int = 8
    batch_size: int = 256
    steps: int = 2500
    lr: float = 1e-2
    patience: int = 250
    seed: int = 0
    activation: str = "sigmoid"
    test_samples: int = 320
    num_threads: int = 1  # torch threads while training; the model is tiny, so one avoids threading overhead (0: keep)


def counting_loss(logits, counts):
    """Cross-entropy over the counts; logits (batch, vocab, sequence_length + 1), counts (batch, vocab)."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), counts.reshape(-1))


def counting_accuracy(model, one_hot, counts):
    """Fraction of (sequence, digit) pairs whose count the model predicts exactly."""
    with torch.no_grad():
        logits, _ = model(one_hot)
    return (logits.argmax(dim=-1) == counts).float().mean().item()


def counting_test_data(config):
    """The ``config.test_samples`` fresh test sequences (seed ``config.seed + 1``): (one-hot, digits, counts)."""
    generator = torch.Generator().manual_seed(config.seed + 1)
    return make_counting_data(config.test_samples, config.sequence_length, config.vocab_size, generator)


def evaluate_counting_model(model, config):
    """Test loss and accuracy of ``model`` on ``counting_test_data(config)``."""
    one_hot, _, counts = counting_test_data(config)
    with torch.no_grad():
        logits, _ = model(one_hot)
    return counting_loss(logits, counts).item(), (logits.argmax(dim=-1) == counts).float().mean().item()


def counting_batches(config, generator, chunk_steps=100):
    """Yield ``config.steps`` fresh training batches, drawn ``chunk_steps`` at a time in a few vectorised calls.

    Each batch is (digits (batch, sequence_length) long, counts (vocab, batch) long, the same counts as float):
    the counts are features first, as ``counting_loss_and_gradients`` takes them.
    """
    for first in range(0, config.steps, chunk_steps):
        steps = min(chunk_steps, config.steps - first)
        digits = torch.randint(config.vocab_size, (steps, config.batch_size, config.sequence_length),
                               generator=generator)
        counts = digit_counts(digits, config.vocab_size).transpose(1, 2).contiguous()
        yield from zip(digits, counts, counts.float())


@contextmanager
def _cpu_settings(num_threads):
    """Use ``num_threads`` torch threads (0: keep) and flush denormal floats to zero; restore both afterwards."""
    previous_threads = torch.get_num_threads()
    if num_threads > 0:
        torch.set_num_threads(num_threads)
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)
        torch.set_num_threads(previous_threads)


def train_counting_model(config=CountingConfig(), progress=True):
    """Train a CountingModel with fresh batches drawn on the fly (vectorised, seeded).

    The sigmoid model trains with closed-form gradients (``lib/counting_gradients.py``, equal to autograd's, a few
    times faster for this tiny model); the softmax model with autograd on ``CountingModel.forward``.
    Returns (model, final training loss, test accuracy on ``config.test_samples`` fresh sequences).
    """
    with _cpu_settings(config.num_threads):
        torch.manual_seed(config.seed)
        model = CountingModel(config.vocab_size, config.sequence_length, config.hidden, activation=config.activation)
        closed_form = ClosedFormTraining(model, config.lr) if config.activation == "sigmoid" else None
        optimizer = closed_form.optimizer if closed_form else torch.optim.Adam(model.parameters(), lr=config.lr)
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, patience=config.patience)
        batches = counting_batches(config, torch.Generator().manual_seed(config.seed))
        bar = tqdm(batches, total=config.steps, desc="training", disable=not progress)
        loss = torch.tensor(float("nan"))
        for step, (digits, counts, float_counts) in enumerate(bar):
            if closed_form:
                loss = closed_form.step(float_counts, counts)
            else:
                logits, _ = model(F.one_hot(digits, config.vocab_size).float())
                loss = counting_loss(logits, counts.T)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            scheduler.step(loss.item())
            if step % 50 == 0:
                bar.set_postfix(loss=f"{loss.item():.4f}")
        if closed_form:
            closed_form.release()
        _, accuracy = evaluate_counting_model(model, config)
    return model, loss.item(), accuracy


def save_counting_model(model, config, path):
    """Write ``{"state_dict": ..., "config": asdict(config)}`` to ``path`` atomically."""
    save_atomic({"state_dict": model.state_dict(), "config": asdict(config)}, path)


def load_counting_model(path):
    """Load a model written by ``save_counting_model`` (or a bare state_dict, as the exercise saved it).

    Returns (model in eval mode, CountingConfig). A missing file raises FileNotFoundError saying to run train.py.
    """
    checkpoint = load_checkpoint(path, hint="Run `python train.py` first to train and save the counting model.")
    if "state_dict" in checkpoint:
        known = {field.name for field in fields(CountingConfig)}
        config = CountingConfig(**{k: v for k, v in checkpoint.get("config", {}).items() if k in known})
        state_dict = checkpoint["state_dict"]
    else:  # the exercise's format: the state_dict alone; the sizes follow from the shapes
        state_dict = checkpoint
        _, vocab_size, hidden = state_dict["query"].shape
        config = CountingConfig(vocab_size=vocab_size, hidden=hidden,
                                sequence_length=state_dict["out.weight"].shape[0] - 1)
    model = CountingModel(config.vocab_size, config.sequence_length, config.hidden, activation=config.activation)
    model.load_state_dict(state_dict)
    return model.eval(), config


def exercise_counting_loop(config=CountingConfig(), progress=True):
    """The exercise's own loop, kept as the speed baseline: a DataLoader reading one sample at a time from a
    pre-generated dataset of ``steps * batch_size`` samples. Returns the trained model."""
    torch.manual_seed(config.seed)
    one_hot, _, counts = make_counting_data(config.steps * config.batch_size, config.sequence_length,
                                            config.vocab_size)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(one_hot, counts),
                                         batch_size=config.batch_size, shuffle=True)
    model = CountingModel(config.vocab_size, config.sequence_length, config.hidden, activation=config.activation)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, patience=config.patience)
    for batch_x, batch_counts in tqdm(loader, desc="exercise loop", disable=not progress):
        logits, _ = model(batch_x)
        loss = counting_loss(logits, batch_counts)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step(loss.item())
    return model
