"""Tests of lib/counting.py: the data, CountingModel (the exercise's seeded values, parameter order, forward), the
loss, training against a plainly written reference loop, the full default run, the config's limits, checkpoints."""
import math
import os

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from lib import counting
from lib.attention import attention_function
from lib.checkpoint import save_atomic
from lib.counting import (PARAMETER_NAMES, CountingConfig, CountingModel, counting_batches, counting_loss,
                          counting_test_data, evaluate_counting_model, load_counting_model, make_counting_data,
                          train_counting_model)

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def bincount_by_hand(digits, vocab_size):
    """counts (batch, vocab) of digits (batch, length), one torch.bincount per sequence."""
    return torch.stack([torch.bincount(sequence, minlength=vocab_size) for sequence in digits])


def test_data_labels_are_the_bincounts_of_the_digits():
    one_hot, digits, counts = make_counting_data(200, 10, 4, torch.Generator().manual_seed(3))
    assert one_hot.shape == (200, 10, 4) and one_hot.dtype == torch.float32 and counts.dtype == torch.long
    assert torch.equal(counts, bincount_by_hand(digits, 4))
    assert torch.equal(one_hot, torch.eye(4)[digits])  # row d of the identity is digit d's one-hot
    assert set(digits.flatten().tolist()) == {0, 1, 2, 3}


def test_data_is_reproducible_from_a_generator_seed():
    first = make_counting_data(50, 10, 3, torch.Generator().manual_seed(7))
    again = make_counting_data(50, 10, 3, torch.Generator().manual_seed(7))
    other = make_counting_data(50, 10, 3, torch.Generator().manual_seed(8))
    for a, b in zip(first, again):
        assert torch.equal(a, b)
    assert not torch.equal(first[1], other[1])


@pytest.mark.parametrize("chunk_numbers", [1, 2 ** 20])  # less than one step: a step per chunk; all steps at once
def test_training_batches_are_seeded_one_hot_sequences_with_their_bincounts(chunk_numbers):
    config = CountingConfig(steps=5, batch_size=4, sequence_length=6)
    batches = list(counting_batches(config, torch.Generator().manual_seed(3), chunk_numbers=chunk_numbers))
    digits = torch.randint(3, (5, 4, 6), generator=torch.Generator().manual_seed(3))  # drawn in one call
    assert len(batches) == 5
    for (one_hot, counts), step_digits in zip(batches, digits):
        assert one_hot.shape == (4, 6, 3) and counts.shape == (4, 3)
        assert torch.equal(one_hot.argmax(-1), step_digits) and torch.equal(one_hot.sum(-1), torch.ones(4, 6))
        assert torch.equal(counts, bincount_by_hand(step_digits, 3))


def test_the_exercise_seeded_values():
    """The exercise's seeded check: seed 0, CountingModel(2, 1, 2), then x = rand(2, 1, 2)."""
    torch.manual_seed(0)
    model = CountingModel(2, 1, 2)
    x = torch.rand(2, 1, 2)
    outputs, weights = model(x)
    assert outputs.shape == (2, 2, 2) and weights.shape == (2, 2, 1)
    torch.testing.assert_close(outputs[0, 0], torch.tensor([0.4014813, 0.7585268]), rtol=1e-5, atol=0)
    torch.testing.assert_close(weights[0], torch.tensor([[0.589777], [0.51559067]]), rtol=1e-5, atol=0)


def test_parameters_are_created_in_the_exercise_order():
    torch.manual_seed(0)
    model = CountingModel(3, 10, 8)
    torch.manual_seed(0)
    expected = {}
    norm = nn.LayerNorm(8)
    expected["norm.weight"], expected["norm.bias"] = norm.weight, norm.bias
    expected["query"] = torch.rand(1, 3, 8)
    for name, layer in (("key", nn.Linear(3, 8)), ("value", nn.Linear(3, 8)), ("out", nn.Linear(8, 11))):
        expected[f"{name}.weight"], expected[f"{name}.bias"] = layer.weight, layer.bias
    state = model.state_dict()
    assert set(state) == set(expected) and list(state) == list(PARAMETER_NAMES)
    for name, tensor in expected.items():
        assert torch.equal(state[name], tensor.detach()), name
    assert model.hidden == 8


@pytest.mark.parametrize("activation", ["sigmoid", "softmax"])
def test_forward_is_the_documented_computation(activation):
    torch.manual_seed(0)
    model = CountingModel(3, 6, 5, activation=activation)
    one_hot, _, _ = make_counting_data(4, 6, 3, torch.Generator().manual_seed(0))
    outputs, weights = model(one_hot)
    assert outputs.shape == (4, 3, 7) and weights.shape == (4, 3, 6)
    query = model.query.repeat(4, 1, 1)  # the exercise repeats the query; the model expands it
    scores = query @ model.key(one_hot).transpose(1, 2) / math.sqrt(5)
    expected_weights = torch.sigmoid(scores) if activation == "sigmoid" else torch.softmax(scores, dim=-1)
    attended = expected_weights @ model.value(one_hot)
    torch.testing.assert_close(weights, expected_weights)
    torch.testing.assert_close(outputs, model.out(model.norm(attended + query)))


def test_forward_rejects_a_wrong_input_shape():
    model = CountingModel(3, 10, 8)
    with pytest.raises(ValueError, match=r"\(2, 10, 4\)"):
        model(torch.zeros(2, 10, 4))


def attended_values(model, one_hot):
    """The attention's output (batch, vocab, hidden), before the residual, LayerNorm and output layer."""
    query = model.query.expand(one_hot.shape[0], -1, -1)
    return attention_function(query, model.key(one_hot), model.value(one_hot), model.hidden,
                              activation=model.activation)[0]


def test_sigmoid_attention_is_linear_in_the_digit_counts():
    """The docstring's identity: attended_i = sum_d count_d * sigmoid(q_i . k_d / sqrt(h)) * v_d."""
    torch.manual_seed(1)
    model = CountingModel(3, 10, 8)
    one_hot, _, counts = make_counting_data(16, 10, 3, torch.Generator().manual_seed(2))
    keys = model.key.weight.T + model.key.bias  # (vocab, hidden): row d is digit d's key
    values = model.value.weight.T + model.value.bias
    digit_weights = torch.sigmoid(model.query[0] @ keys.T / math.sqrt(8))  # (query digit i, digit d)
    from_counts = torch.einsum("bd,id,dh->bih", counts.float(), digit_weights, values)
    torch.testing.assert_close(attended_values(model, one_hot), from_counts)


def test_softmax_attention_sees_proportions_only_sigmoid_sees_counts():
    """A sequence and the same sequence twice over: the softmax attends to the same value, the sigmoid to twice it."""
    torch.manual_seed(1)
    one_hot, _, _ = make_counting_data(8, 5, 3, torch.Generator().manual_seed(4))
    doubled = torch.cat([one_hot, one_hot], dim=1)  # every count doubled, every proportion the same
    softmax_model = CountingModel(3, 10, 8, activation="softmax")
    torch.testing.assert_close(attended_values(softmax_model, doubled), attended_values(softmax_model, one_hot))
    sigmoid_model = CountingModel(3, 10, 8)
    torch.testing.assert_close(attended_values(sigmoid_model, doubled), 2 * attended_values(sigmoid_model, one_hot))


def test_loss_and_its_gradient_equal_cross_entropy_over_the_flattened_counts():
    logits = (torch.randn(64, 3, 11, generator=torch.Generator().manual_seed(0)) * 5).requires_grad_()
    counts = torch.randint(11, (64, 3), generator=torch.Generator().manual_seed(1))
    loss = counting_loss(logits, counts)
    gradient, = torch.autograd.grad(loss, logits)
    expected = F.cross_entropy(logits.reshape(-1, 11), counts.reshape(-1))
    expected_gradient, = torch.autograd.grad(expected, logits)
    torch.testing.assert_close(loss, expected, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(gradient, expected_gradient, rtol=1e-5, atol=1e-8)
    by_hand = -torch.log_softmax(logits.detach(), -1).gather(-1, counts[..., None]).mean()
    torch.testing.assert_close(loss.detach(), by_hand)


def reference_training(config):
    """The exercise's loop, written plainly: seeded model, torch.optim.Adam (for-loop), ReduceLROnPlateau stepped on
    the loss, cross-entropy over the flattened counts, the batches drawn in one call from the seed."""
    torch.manual_seed(config.seed)
    model = CountingModel(config.vocab_size, config.sequence_length, config.hidden, activation=config.activation)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, foreach=False)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, patience=config.patience)
    digits = torch.randint(config.vocab_size, (config.steps, config.batch_size, config.sequence_length),
                           generator=torch.Generator().manual_seed(config.seed))
    for step_digits in digits:
        logits, _ = model(torch.eye(config.vocab_size)[step_digits])
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                               bincount_by_hand(step_digits, config.vocab_size).reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step(loss.item())
    return model, loss.item(), optimizer.param_groups[0]["lr"]


@pytest.mark.parametrize("activation", ["sigmoid", "softmax"])
def test_training_follows_the_plain_reference_loop_and_restores_the_thread_count(activation):
    config = CountingConfig(steps=40, batch_size=32, patience=2, lr=0.05, seed=3, activation=activation)
    threads = torch.get_num_threads()
    model, loss, _ = train_counting_model(config, progress=False)
    assert torch.get_num_threads() == threads
    expected_model, expected_loss, final_lr = reference_training(config)
    assert final_lr < config.lr  # the plateau scheduler did lower the rate, so the comparison covers it
    assert loss == pytest.approx(expected_loss, rel=1e-4)
    for (name, parameter), expected in zip(model.named_parameters(), expected_model.parameters()):
        if name == "key.bias" and activation == "softmax":
            continue  # a softmax ignores a shift shared by all keys: its gradient is rounding noise that Adam scales
        torch.testing.assert_close(parameter, expected, rtol=1e-4, atol=1e-5, msg=name)
    assert not torch.equal(model.out.weight, CountingModel(3, 10, 8).out.weight)


def test_the_exercise_configuration_counts_perfectly():
    """`python train.py`: test accuracy 1.0 on 320 fresh sequences (about 3 s on one thread)."""
    model, loss, accuracy = train_counting_model(CountingConfig(), progress=False)
    assert accuracy == 1.0 and loss < 0.01
    one_hot, _, counts = make_counting_data(320, 10, 3, torch.Generator().manual_seed(12345))  # other sequences
    assert (model(one_hot)[0].argmax(-1) == counts).float().mean().item() > 0.99


@pytest.mark.parametrize("field, value", [("sequence_length", 21), ("sequence_length", 0), ("vocab_size", 0),
                                          ("hidden", 1), ("batch_size", 0), ("steps", 0), ("patience", -1),
                                          ("seed", -1), ("lr", 0.0), ("lr", -1.0), ("lr", math.nan), ("lr", 2.0),
                                          ("steps", 2.5), ("hidden", True), ("activation", "relu")])
def test_config_refuses_values_outside_its_limits(field, value):
    with pytest.raises(ValueError, match=field):
        CountingConfig(**{field: value})


def test_load_accepts_the_exercise_bare_state_dict(tmp_path):
    torch.manual_seed(0)
    model = CountingModel(4, 7, 5)
    path = str(tmp_path / "bare.pth")
    save_atomic(model.state_dict(), path)
    loaded, config = load_counting_model(path)
    assert (config.vocab_size, config.sequence_length, config.hidden) == (4, 7, 5)
    x, _, _ = make_counting_data(3, 7, 4)
    torch.testing.assert_close(loaded(x)[0], model(x)[0])


@pytest.mark.parametrize("content, message", [
    ({"format": 1, "model": {}}, "not a counting model checkpoint .it holds format, model"),
    ([1, 2], "not a counting model checkpoint .it holds list"),
    ({"state_dict": {"query": torch.zeros(3)}}, "not a counting model checkpoint"),
    ({name: torch.zeros(2) for name in PARAMETER_NAMES}, "not a counting model this library can load"),
    ({"state_dict": CountingModel(3, 10, 8).state_dict(), "config": {"activation": "relu"}}, "activation"),
])
def test_load_refuses_what_is_not_a_counting_model(tmp_path, content, message):
    path = str(tmp_path / "other.pth")
    save_atomic(content, path)
    with pytest.raises(ValueError, match=message):
        load_counting_model(path)


def with_shapes(vocab_size=3, sequence_length=10, hidden=8):
    """A counting checkpoint whose weights have these sizes (made by hand: no model of them is built)."""
    return {"query": torch.zeros(1, vocab_size, hidden), "norm.weight": torch.ones(hidden),
            "norm.bias": torch.zeros(hidden), "key.weight": torch.zeros(hidden, vocab_size),
            "key.bias": torch.zeros(hidden), "value.weight": torch.zeros(hidden, vocab_size),
            "value.bias": torch.zeros(hidden), "out.weight": torch.zeros(sequence_length + 1, hidden),
            "out.bias": torch.zeros(sequence_length + 1)}


def with_config(**changes):
    return {"state_dict": with_shapes(), "config": dict(vars(CountingConfig()), **changes)}


ADVICE = "; train a new one with 'python train.py'"
# (the checkpoint, the words of the one-line error): each refused before a CountingModel is built
DAMAGED = [
    (with_config(steps=10 ** 12), "is a damaged counting model checkpoint: its stored config steps must be from 1 to "
                                  "1000000, got 1000000000000" + ADVICE),
    (with_config(batch_size=-1), "its stored config batch_size must be from 1 to 16384, got -1"),
    (with_config(test_samples=10 ** 40), "its stored config test_samples must be from 1 to 1000000, got a number of "
                                         "about 41 digits"),
    (with_config(seed="0"), "its stored config seed must be a whole number, got '0'"),
    (with_config(lr=math.inf), "its stored config lr must be a finite number, got inf"),
    (with_config(lr=5.0), "its stored config lr must be above 0 and at most 1, got 5"),
    (with_config(activation=["sigmoid"]), "activation must be a string, got ['sigmoid']"),
    (with_config(activation="relu"), "activation must be one of sigmoid, softmax, got 'relu'"),
    (with_config(steps=0, patience=-1), "its stored config steps must be from 1 to 1000000, got 0; patience must be "
                                        "from 0 to 1000000, got -1" + ADVICE),
    (with_config(vocab_size=10 ** 9), "its stored config vocab_size must be from 1 to 100, got 1000000000"),
    ({"state_dict": with_shapes(hidden=4096)},
     "is a damaged counting model checkpoint: its weights' shapes give hidden must be from 2 to 1024, got 4096"),
    (with_shapes(sequence_length=500), "its weights' shapes give sequence_length must be from 1 to 20, got 500"),
    (with_shapes(vocab_size=101), "its weights' shapes give vocab_size must be from 1 to 100, got 101"),
]


@pytest.mark.parametrize("content, words", DAMAGED, ids=[words[:60] for _, words in DAMAGED])
def test_load_checks_what_a_checkpoint_stores_before_a_model_is_built(tmp_path, monkeypatch, content, words):
    path = str(tmp_path / "damaged.pth")
    save_atomic(content, path)

    def never(*args, **kwargs):
        raise AssertionError("a model was built from a damaged checkpoint")
    monkeypatch.setattr(counting, "CountingModel", never)
    with pytest.raises(ValueError) as error:
        load_counting_model(path)
    message = str(error.value)
    assert words in message and message.startswith(path) and "\n" not in message, message


def test_load_of_a_checkpoint_of_hand_made_shapes_builds_its_model(tmp_path):
    """The hand-made shapes of the table above load when they are in range, so each row fails by its value alone."""
    path = str(tmp_path / "counting.pth")
    save_atomic(with_config(), path)
    _, config = load_counting_model(path)
    assert (config.vocab_size, config.sequence_length, config.hidden) == (3, 10, 8) and config == CountingConfig()


def test_load_refuses_the_shipped_translator():
    with pytest.raises(ValueError, match="not a counting model checkpoint"):
        load_counting_model(os.path.join(REPOSITORY, "data", "translator.pth"))


def test_the_test_set_is_evaluated_in_batches_with_the_loss_and_accuracy_of_all_at_once():
    config = CountingConfig(batch_size=7, test_samples=50, hidden=6, seed=3)
    torch.manual_seed(0)
    model = CountingModel(config.vocab_size, config.sequence_length, config.hidden)
    one_hot, _, counts = counting_test_data(config)
    with torch.no_grad():
        logits, _ = model(one_hot)
    loss, accuracy = evaluate_counting_model(model, config)
    assert loss == pytest.approx(counting_loss(logits, counts).item(), rel=1e-6)
    assert accuracy == (logits.argmax(-1) == counts).float().mean().item()


if __name__ == "__main__":
    pytest.main([__file__])
