"""Tests of lib/utils.py: calculate_jacobian against the interface's seeded value, closed forms and captum."""
import sys

import pytest
import torch
from torch import nn
import torch.nn.functional as F

from lib.utils import calculate_jacobian
from tests.helpers import small_cnn


def test_seeded_reference_value():
    torch.manual_seed(0)
    x = torch.rand(1, 1, 3, 3)
    target = torch.rand(1, 9)
    model = nn.Sequential(nn.Flatten(), nn.Linear(9, 9))
    gradient, output = calculate_jacobian(x, target, model, F.mse_loss)
    assert gradient.shape == x.shape and output.shape == (1, 9)
    torch.testing.assert_close(gradient[0, 0, 0], torch.tensor([-0.0216937, -0.0715198, -0.0503166]),
                               rtol=1e-5, atol=1e-7)


def test_linear_model_closed_form():
    torch.manual_seed(1)
    x, target = torch.randn(4, 2, 3), torch.randn(4, 5)
    linear = nn.Linear(6, 5)
    model = nn.Sequential(nn.Flatten(), linear)
    gradient, output = calculate_jacobian(x, target, model, F.mse_loss)
    residual = x.flatten(1) @ linear.weight.T + linear.bias - target  # d/dx mean((Wx + b - t)^2)
    expected = (2 / residual.numel() * residual @ linear.weight).view_as(x)
    torch.testing.assert_close(gradient, expected)
    torch.testing.assert_close(output, residual + target)
    labels = torch.tensor([0, 4, 2, 2])  # cross-entropy: W^T (softmax - one_hot) / batch
    gradient, _ = calculate_jacobian(x, labels, model, F.cross_entropy)
    expected = ((output.softmax(1) - F.one_hot(labels, 5)) @ linear.weight / 4).view_as(x)
    torch.testing.assert_close(gradient, expected)


def test_matches_captum_saliency_on_a_small_cnn():
    from captum.attr import Saliency
    torch.manual_seed(2)
    model = small_cnn().eval()
    x, labels = torch.rand(3, 3, 6, 6), torch.tensor([1, 4, 0])

    def target_logit(output, target):  # the quantity captum differentiates: the target's logit
        return output.gather(1, target[:, None]).sum()

    gradient, _ = calculate_jacobian(x, labels, model, target_logit)
    reference = Saliency(model).attribute(x.clone().requires_grad_(True), target=labels, abs=False)
    torch.testing.assert_close(gradient, reference)
    assert gradient.abs().sum() > 0


def test_leaves_input_parameters_and_mode_alone():
    torch.manual_seed(3)
    model = nn.Sequential(small_cnn(), nn.Dropout(0.0))
    x, labels = torch.rand(2, 3, 6, 6), torch.tensor([0, 1])
    for training in (True, False):
        model.train(training)
        gradient, _ = calculate_jacobian(x, labels, model, F.cross_entropy)
        assert model.training is training and all(m.training is training for m in model.modules())
    assert not x.requires_grad and x.grad is None
    assert all(parameter.grad is None for parameter in model.parameters())
    leaf = x.clone().requires_grad_(True)
    again, _ = calculate_jacobian(leaf, labels, model, F.cross_entropy)
    assert leaf.requires_grad and leaf.grad is None
    torch.testing.assert_close(again, gradient)


def summed_cross_entropy(output, target):
    return F.cross_entropy(output, target, reduction="sum")


def test_a_batch_takes_one_forward_and_backward_pass():
    torch.manual_seed(4)
    model = small_cnn().eval()
    calls = {"forward": 0, "backward": 0}
    model.register_forward_hook(lambda *_: calls.__setitem__("forward", calls["forward"] + 1))
    model[0].register_full_backward_hook(lambda *_: calls.__setitem__("backward", calls["backward"] + 1))
    x, labels = torch.rand(5, 3, 6, 6), torch.tensor([0, 1, 2, 3, 4])
    gradient, output = calculate_jacobian(x, labels, model, summed_cross_entropy)
    assert calls == {"forward": 1, "backward": 1} and output.shape == (5, 5)
    singles = torch.cat([calculate_jacobian(x[i:i + 1], labels[i:i + 1], model, summed_cross_entropy)[0]
                         for i in range(5)])
    torch.testing.assert_close(gradient, singles)


def test_a_loss_that_ignores_the_input_has_a_zero_gradient():
    x = torch.rand(2, 3, 6, 6)
    constant = torch.ones((), requires_grad=True)
    gradient, output = calculate_jacobian(x, None, small_cnn(), lambda output, target: constant)
    assert torch.equal(gradient, torch.zeros_like(x)) and output.shape == (2, 5)


def test_bad_input_raises():
    model = small_cnn()
    with pytest.raises(TypeError, match="must be a tensor"):
        calculate_jacobian([[1.0]], torch.tensor([0]), model, F.cross_entropy)
    with pytest.raises(TypeError):
        calculate_jacobian(torch.zeros(1, 3, 6, 6, dtype=torch.long), torch.tensor([0]), model, F.cross_entropy)
    with pytest.raises(ValueError, match="scalar"):
        calculate_jacobian(torch.rand(2, 3, 6, 6), torch.tensor([0, 1]), model,
                           lambda output, target: F.cross_entropy(output, target, reduction="none"))


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
