"""Tests of lib/implicit/saliency.py: the label loss, saliency maps and SmoothGrad against hand computations with
autograd."""
import sys

import pytest
import torch
import torch.nn.functional as F

from lib.implicit.saliency import input_gradient, input_saliency, label_loss, label_mask, saliency_map, smoothgrad
from tests.helpers import small_cnn


@pytest.fixture
def toy():
    torch.manual_seed(5)
    return small_cnn().eval(), torch.rand(3, 3, 6, 6), torch.tensor([3, 1, 0])


def hand_gradient(model, x, labels):
    """d/dx of the cross-entropy summed over the batch, with torch.autograd.grad directly."""
    x = x.clone().requires_grad_(True)
    (gradient,) = torch.autograd.grad(F.cross_entropy(model(x), labels, reduction="sum"), x)
    return gradient


def hand_map(gradient):
    """Per image: the L2 norm over channels, then (norm - min) / (max - min), written out with plain loops."""
    maps = []
    for g in gradient:
        norm = (g ** 2).sum(0).sqrt()
        maps.append((norm - norm.min()) / (norm.max() - norm.min()))
    return torch.stack(maps)


def test_label_loss_is_the_summed_cross_entropy_and_adds_the_classes_of_a_mask():
    torch.manual_seed(2)
    logits, labels = torch.randn(3, 6), torch.tensor([5, 0, 2])
    expected = -sum(logits[i].softmax(0)[labels[i]].log() for i in range(3))
    torch.testing.assert_close(label_loss(logits, labels), expected)
    torch.testing.assert_close(label_loss(logits, label_mask([(5,), (0,), (2,)], 6)), expected)
    sets = label_mask([(1, 2), (0,), (3, 4, 5)], 6)
    p = logits.softmax(1)
    expected = -(p[0, 1] + p[0, 2]).log() - p[1, 0].log() - (p[2, 3] + p[2, 4] + p[2, 5]).log()
    torch.testing.assert_close(label_loss(logits, sets), expected)


def test_saliency_map_is_channel_norm_min_max_scaled():
    gradient = torch.zeros(2, 3, 2, 2)
    gradient[0, :, 0, 0] = torch.tensor([3.0, 4.0, 0.0])  # norm 5
    gradient[0, 0, 1, 1] = -1.0  # norm 1
    gradient[0, :, 0, 1] = 1.0  # norm sqrt(3)
    maps = saliency_map(gradient)
    expected = torch.tensor([[1.0, 3 ** 0.5 / 5], [0.0, 0.2]])
    torch.testing.assert_close(maps[0], expected)
    assert torch.equal(maps[1], torch.zeros(2, 2))  # an all-zero gradient gives an all-zero map
    with pytest.raises(ValueError, match="batch, channels, height, width"):
        saliency_map(torch.zeros(3, 2, 2))


def test_gradient_saliency_equals_a_hand_computation(toy):
    model, x, labels = toy
    maps, output = input_saliency(model, x, labels)
    torch.testing.assert_close(maps, hand_map(hand_gradient(model, x, labels)))
    torch.testing.assert_close(output, model(x).detach())
    gradient, _ = input_gradient(model, x, label_mask([(3,), (1,), (0,)], 5))  # a one-hot mask: the same loss
    torch.testing.assert_close(gradient, hand_gradient(model, x, labels))
    singles = torch.cat([input_gradient(model, x[i:i + 1], labels[i:i + 1])[0] for i in range(len(x))])
    torch.testing.assert_close(gradient, singles)  # summed loss: an image's gradient does not depend on the batch


def test_smoothgrad_is_the_mean_gradient_over_noisy_copies(toy):
    model, x, labels = toy
    x, labels = x[:2], labels[:2]
    gradient, output = smoothgrad(model, x, labels, samples=4, noise=0.2, batch_size=3,
                                  generator=torch.Generator().manual_seed(7))
    noise = 0.2 * torch.randn(8, 3, 6, 6, generator=torch.Generator().manual_seed(7))
    expected = torch.stack([torch.stack([hand_gradient(model, x[i:i + 1] + noise[4 * i + k], labels[i:i + 1])[0]
                                         for k in range(4)]).mean(0) for i in range(2)])
    torch.testing.assert_close(gradient, expected)
    torch.testing.assert_close(output, model(x).detach())


def test_smoothgrad_with_noise_0_is_the_plain_gradient(toy):
    model, x, labels = toy
    no_noise, _ = smoothgrad(model, x, labels, samples=3, noise=0.0)
    torch.testing.assert_close(no_noise, hand_gradient(model, x, labels))
    plain, _ = input_saliency(model, x, labels)
    smooth, _ = input_saliency(model, x, labels, "smoothgrad", samples=2, noise=0.0)
    torch.testing.assert_close(smooth, plain)


def test_smoothgrad_noise_follows_the_generator(toy):
    model, x, labels = toy

    def maps(seed):
        generator = torch.Generator().manual_seed(seed)
        return input_saliency(model, x, labels, "smoothgrad", samples=2, generator=generator)[0]
    assert torch.equal(maps(0), maps(0))
    assert not torch.allclose(maps(0), maps(1))


def test_saliency_in_passes_of_a_few_images_is_the_saliency_of_the_whole_batch(toy):
    """Memory stays bounded for many images: batch_size images (SmoothGrad: copies) per pass, the same maps."""
    model, x, labels = toy
    torch.testing.assert_close(input_saliency(model, x, labels, batch_size=1)[0], input_saliency(model, x, labels)[0])
    torch.testing.assert_close(input_saliency(model, x, labels, batch_size=2)[1], model(x).detach())
    calls = []
    model.register_forward_hook(lambda module, inputs, output: calls.append(len(inputs[0])))
    input_saliency(model, x, labels, "smoothgrad", samples=4, batch_size=8, generator=torch.Generator().manual_seed(3))
    assert max(calls) <= 8  # at most 2 images of 4 copies at once (and their clean forward pass)
    noise = 0.15 * torch.randn(12, 3, 6, 6, generator=torch.Generator().manual_seed(3))  # drawn image by image
    expected = torch.stack([torch.stack([hand_gradient(model, x[i:i + 1] + noise[4 * i + k], labels[i:i + 1])[0]
                                         for k in range(4)]).mean(0) for i in range(3)])
    smooth, _ = input_saliency(model, x, labels, "smoothgrad", samples=4, batch_size=8,
                               generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(smooth, hand_map(expected))


@pytest.mark.parametrize("call, message", [
    (lambda m, x, y: input_saliency(m, x, y, "integrated"), "Unknown saliency method 'integrated'"),
    (lambda m, x, y: smoothgrad(m, x, y, samples=0), "samples must be"),
    (lambda m, x, y: smoothgrad(m, x, y, samples=2.5), "samples must be"),
    (lambda m, x, y: smoothgrad(m, x, y, noise=-0.1), "noise must be"),
    (lambda m, x, y: smoothgrad(m, x, y, noise=float("nan")), "noise must be"),
    (lambda m, x, y: smoothgrad(m, x, y, batch_size=0), "batch_size must be"),
    (lambda m, x, y: input_gradient(m, x, y[:2]), r"labels must be class indices \(3,\)"),
    (lambda m, x, y: input_gradient(m, x, torch.ones(3, 5)), "boolean mask"),
    (lambda m, x, y: input_gradient(m, x[0, 0, 0], y), "images must be a batch"),
])
def test_bad_arguments(toy, call, message):
    model, x, labels = toy
    with pytest.raises(ValueError, match=message):
        call(model, x, labels)


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
