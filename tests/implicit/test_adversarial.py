"""Tests of lib/implicit/adversarial.py: FGSM and PGD against captum, bounds, targeted attacks, the real model."""
import sys

import pytest
import torch
from torch import nn
import torch.nn.functional as F

from lib.implicit import adversarial, image_cli, vision
from lib.implicit.adversarial import fgsm, gradient_step, pgd
from tests.helpers import small_cnn


@pytest.fixture
def toy():
    torch.manual_seed(0)
    return small_cnn().eval(), torch.rand(4, 3, 6, 6), torch.tensor([0, 3, 1, 4])


@pytest.mark.filterwarnings("ignore:Input Tensor 0 did not already require gradients")
@pytest.mark.parametrize("targeted", [False, True])
def test_fgsm_matches_captum(toy, targeted):
    from captum.robust import FGSM
    model, x, labels = toy
    reference = FGSM(model, loss_func=nn.CrossEntropyLoss(reduction="none"), lower_bound=0.0, upper_bound=1.0)
    reference.zero_thresh = 0.0  # captum leaves pixels with |gradient| < 1e-6 alone; sign(0) = 0 does the same
    expected = reference.perturb(x.clone(), 0.03, labels, targeted=targeted)
    torch.testing.assert_close(fgsm(model, x, labels, 0.03, targeted=targeted), expected, rtol=0, atol=1e-7)
    assert not torch.equal(expected, x)


@pytest.mark.filterwarnings("ignore:Input Tensor 0 did not already require gradients")
@pytest.mark.parametrize("targeted", [False, True])
def test_pgd_matches_captum(toy, targeted):
    from captum.robust import PGD
    model, x, labels = toy
    reference = PGD(model, loss_func=nn.CrossEntropyLoss(reduction="none"), lower_bound=0.0, upper_bound=1.0)
    reference.fgsm.zero_thresh = 0.0
    expected = reference.perturb(x.clone(), radius=0.05, step_size=0.02, step_num=5, target=labels, targeted=targeted)
    ours = pgd(model, x, labels, 0.05, step_size=0.02, steps=5, targeted=targeted)
    torch.testing.assert_close(ours, expected, rtol=0, atol=1e-6)


def test_attacks_stay_in_the_ball_and_in_0_1(toy):
    model, x, labels = toy
    x = x.clone()
    x[0] = 0.0  # pixels at the edges of [0, 1] cannot move outward
    x[1] = 1.0
    for epsilon in (0.01, 0.2):
        for targeted in (False, True):
            for result in (fgsm(model, x, labels, epsilon, targeted), pgd(model, x, labels, epsilon, steps=4,
                                                                          targeted=targeted)):
                assert result.shape == x.shape
                assert float((result - x).abs().max()) <= epsilon + 1e-6
                assert float(result.min()) >= 0 and float(result.max()) <= 1
    assert torch.allclose(adversarial.linf_size(x, fgsm(model, x, labels, 3 / 255))[2:], torch.tensor([3.0, 3.0]))


def test_pgd_with_the_largest_budget_in_one_step(toy):
    model, x, labels = toy  # epsilon 1 (255/255), one step of the default size 2.5: every pixel goes to 0 or 1
    result = pgd(model, x, labels, 1.0, steps=1)
    gradient = torch.autograd.grad(F.cross_entropy(model(x.requires_grad_()), labels, reduction="sum"), x)[0]
    torch.testing.assert_close(result, (gradient.sign() + 1) / 2 * (gradient != 0) + x.detach() * (gradient == 0))


def test_attacks_are_batched(toy):
    model, x, labels = toy
    together = pgd(model, x, labels, 0.05, steps=3)
    apart = torch.cat([pgd(model, x[i:i + 1], labels[i:i + 1], 0.05, steps=3) for i in range(len(x))])
    torch.testing.assert_close(together, apart)


def test_attacks_move_the_loss_the_right_way(toy):
    model, x, labels = toy
    before = F.cross_entropy(model(x), labels, reduction="none")
    assert (F.cross_entropy(model(pgd(model, x, labels, 0.1)), labels, reduction="none") > before).all()
    target = torch.full_like(labels, 2)
    to_target = pgd(model, x, target, 0.5, steps=20, targeted=True)
    assert (model(to_target).argmax(1) == 2).all()


def test_gradient_step_is_the_scaled_input_gradient():
    torch.manual_seed(1)
    linear = nn.Linear(12, 3)
    model = nn.Sequential(nn.Flatten(), linear)
    x, labels = torch.rand(2, 3, 2, 2) * 0.5 + 0.25, torch.tensor([2, 0])
    probabilities = model(x).softmax(1).detach()
    gradient = ((probabilities - F.one_hot(labels, 3)) @ linear.weight).view_as(x)  # summed cross-entropy
    torch.testing.assert_close(gradient_step(model, x, labels, 0.1), (x + 0.1 * gradient).clamp(0, 1))
    torch.testing.assert_close(gradient_step(model, x, labels, 0.1, targeted=True), (x - 0.1 * gradient).clamp(0, 1))


def test_bad_arguments(toy):
    model, x, labels = toy
    with pytest.raises(ValueError, match="labels must be"):
        fgsm(model, x, labels[:2], 0.1)
    with pytest.raises(ValueError, match=r"epsilon must be from 0 to 1 .* got -0.00392157 \(= -1/255\)"):
        pgd(model, x, labels, -1 / 255)
    with pytest.raises(ValueError, match=r"got 8 \(= 2040/255\)"):  # 8 was meant as 8/255
        fgsm(model, x, labels, 8)
    with pytest.raises(ValueError, match="epsilon must be"):
        fgsm(model, x, labels, float("nan"))
    with pytest.raises(ValueError, match="step_size"):
        pgd(model, x, labels, 0.1, step_size=-0.01)
    with pytest.raises(ValueError, match="scale must be a finite number"):
        gradient_step(model, x, labels, float("inf"))
    with pytest.raises(ValueError, match="steps"):
        pgd(model, x, labels, 0.1, steps=0)
    with pytest.raises(ValueError, match="Unknown attack"):
        adversarial.attack(model, x, labels, "deepfool")


def test_pgd_fools_the_default_model_at_2_over_255(classifier):
    items = vision.photo_items(["chelsea", "coffee", "rocket"], classifier.categories)
    names, images, classes = vision.batch_from_items(classifier, items)
    report = adversarial.evaluate_attack(classifier, images, classes, "pgd", epsilon=2 / 255, steps=10)
    assert report["correct"] == [True, True, True]
    assert report["fooled"] == [True, True, True], report["after"]
    assert torch.allclose(report["linf"], torch.full((3,), 2.0), atol=1e-3)
    for after, cls in zip(report["after"], classes):  # fooled means out of every class that counts as correct
        assert classifier.categories.index(after[0][0]) not in cls
    text = image_cli.format_attack_report(names, report)
    assert "fooled 3 of 3 correctly classified images (100.0%)" in text
    rows = text.splitlines()[1:4]
    for name, row, before, after in zip(names, rows, report["before"], report["after"]):
        assert row.split() == [name, *before[0][0][:20].split(), f"{before[0][1]:.2f}", *after[0][0][:20].split(),
                               f"{after[0][1]:.2f}", "2.0", "yes"]


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
