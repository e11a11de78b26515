"""Tests of the counting model's closed-form loss and gradients, against autograd and torch.optim.Adam."""
import pytest
import torch
import torch.nn.functional as F

from lib.counting import CountingConfig, CountingModel, counting_batches, counting_loss, make_counting_data
from lib.counting_gradients import (ClosedFormTraining, counting_loss_and_gradients, detached_parameters,
                                    digit_counts)


def autograd_loss_and_gradients(model, one_hot, counts):
    model.zero_grad()
    loss = counting_loss(model(one_hot)[0], counts)
    loss.backward()
    return loss.detach(), {name: parameter.grad.clone() for name, parameter in model.named_parameters()}


def randomised_model(vocab_size, sequence_length, hidden, seed):
    """A model whose parameters are all random (not the initial ones: LayerNorm's gain and shift are 1 and 0)."""
    torch.manual_seed(seed)
    model = CountingModel(vocab_size, sequence_length, hidden)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(torch.randn_like(parameter))
    return model


def test_digit_counts_match_a_direct_count():
    digits = torch.randint(5, (40, 9), generator=torch.Generator().manual_seed(0))
    counts = digit_counts(digits, 5)
    assert counts.shape == (40, 5)
    assert counts.tolist() == [[row.count(digit) for digit in range(5)] for row in digits.tolist()]


@pytest.mark.parametrize("vocab_size, sequence_length, hidden, batch", [(3, 10, 8, 256), (4, 7, 5, 33), (2, 1, 2, 3)])
def test_loss_and_gradients_equal_autograd(vocab_size, sequence_length, hidden, batch):
    model = randomised_model(vocab_size, sequence_length, hidden, seed=vocab_size)
    one_hot, _, counts = make_counting_data(batch, sequence_length, vocab_size, torch.Generator().manual_seed(1))
    expected_loss, expected = autograd_loss_and_gradients(model, one_hot, counts)
    loss, gradients = counting_loss_and_gradients(detached_parameters(model), counts.T.float(), counts.T)
    torch.testing.assert_close(loss, expected_loss, rtol=1e-6, atol=1e-6)
    assert gradients.keys() == expected.keys()
    for name, gradient in gradients.items():
        assert gradient.shape == expected[name].shape, name
        torch.testing.assert_close(gradient, expected[name], rtol=1e-5, atol=1e-6, msg=name)


def test_only_the_counts_matter_not_the_order_of_the_digits():
    model = randomised_model(3, 10, 8, seed=5)
    one_hot, _, counts = make_counting_data(16, 10, 3, torch.Generator().manual_seed(2))
    shuffled = one_hot[:, torch.randperm(10)]
    _, expected = autograd_loss_and_gradients(model, shuffled, counts)
    _, gradients = counting_loss_and_gradients(detached_parameters(model), counts.T.float(), counts.T)
    for name, gradient in gradients.items():
        torch.testing.assert_close(gradient, expected[name], rtol=1e-5, atol=1e-6, msg=name)


def test_softmax_models_are_refused():
    with pytest.raises(ValueError, match="sigmoid"):
        detached_parameters(CountingModel(3, 10, 8, activation="softmax"))


def test_adam_update_equals_torch_adam_step():
    torch.manual_seed(0)
    training = ClosedFormTraining(CountingModel(3, 10, 8), lr=1e-2)
    reference = training.flat.detach().clone().requires_grad_()
    optimizer = torch.optim.Adam([reference], lr=1e-2)
    for step in range(6):
        if step == 3:  # a scheduler lowering the learning rate mid-run
            training.optimizer.param_groups[0]["lr"] = optimizer.param_groups[0]["lr"] = 1e-3
        gradient = torch.randn_like(reference)
        reference.grad = gradient.clone()
        optimizer.step()
        training.adam_update_(gradient)
        torch.testing.assert_close(training.flat.detach(), reference.detach(), rtol=1e-6, atol=1e-7)


def test_closed_form_training_follows_autograd_training():
    config = CountingConfig(steps=30)
    torch.manual_seed(0)
    model = CountingModel(3, 10, 8)
    torch.manual_seed(0)
    reference = CountingModel(3, 10, 8)
    optimizer = torch.optim.Adam(reference.parameters(), lr=config.lr)
    training = ClosedFormTraining(model, lr=config.lr)
    for digits, counts, float_counts in counting_batches(config, torch.Generator().manual_seed(0), chunk_steps=7):
        loss = training.step(float_counts, counts)
        expected_loss = counting_loss(reference(F.one_hot(digits, 3).float())[0], counts.T)
        torch.testing.assert_close(loss, expected_loss.detach(), rtol=1e-4, atol=1e-5)
        optimizer.zero_grad()
        expected_loss.backward()
        optimizer.step()
    for (name, parameter), expected in zip(model.named_parameters(), reference.parameters()):
        torch.testing.assert_close(parameter.detach(), expected.detach(), rtol=1e-4, atol=1e-5, msg=name)
    assert not torch.equal(model.out.weight, CountingModel(3, 10, 8).out.weight)


def test_release_gives_each_parameter_its_own_storage():
    model = CountingModel(3, 10, 8)
    training = ClosedFormTraining(model, lr=1e-2)
    assert model.query.data_ptr() == training.flat.data_ptr()  # views of the flat tensor while training
    training.release()
    before = model.query.detach().clone()
    training.flat.data.zero_()
    assert torch.equal(model.query.detach(), before)
    assert {parameter.data_ptr() for parameter in model.parameters()}.isdisjoint({training.flat.data_ptr()})


def test_batches_are_seeded_and_counts_are_features_first():
    config = CountingConfig(steps=5, batch_size=4)
    batches = list(counting_batches(config, torch.Generator().manual_seed(3), chunk_steps=2))
    again = list(counting_batches(config, torch.Generator().manual_seed(3), chunk_steps=2))
    assert len(batches) == 5
    for (digits, counts, float_counts), (same_digits, _, _) in zip(batches, again):
        assert digits.shape == (4, 10) and counts.shape == (3, 4) and torch.equal(digits, same_digits)
        assert torch.equal(counts.T, digit_counts(digits, 3)) and torch.equal(float_counts, counts.float())


if __name__ == "__main__":
    pytest.main([__file__])
