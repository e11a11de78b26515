"""Adversarial examples: the input gradient turned against the network.

All attacks take ``(model, images, labels, ...)`` like the saliency functions of :mod:`lib.implicit.saliency`: images
(batch, channels, height, width) with pixels in [0, 1]; ``labels`` class indices (batch,), or a boolean mask (batch,
num_classes) of classes that all count as the label (e.g. the five ImageNet cat classes for a cat photo). They work on
the whole batch at once and return new images in [0, 1]. The loss is :func:`lib.implicit.saliency.label_loss`, -log of
the label's probability (the cross-entropy for indices), summed over the batch, so each image's step does not depend on
the others. Untargeted attacks raise that loss for ``labels`` (the true classes); with ``targeted=True`` they lower it
(``labels`` are the classes to reach)."""
import math
import numbers

import torch

from lib.implicit.saliency import check_batch, input_gradient, label_mask
from lib.implicit.vision import top_k


def _check(images, labels, epsilon=None):
    images, labels = check_batch(images, labels)
    if epsilon is not None and not (math.isfinite(epsilon) and 0 <= epsilon <= 1):
        raise ValueError(f"epsilon must be from 0 to 1 in pixel units of [0, 1] (2/255 is two grey levels), got "
                         f"{epsilon:.6g} (= {epsilon * 255:.6g}/255)")
    return images, labels


def gradient_step(model, images, labels, scale, targeted=False):
    """The exercise's recipe: one step along the raw input gradient, ``images + scale * gradient``, clipped to [0, 1].

    Unlike FGSM the step is not bounded: its L-infinity size is ``scale`` times the largest gradient entry.
    Returns (batch, channels, height, width).
    """
    images, labels = _check(images, labels)
    if not math.isfinite(scale):
        raise ValueError(f"scale must be a finite number, got {scale}")
    gradient, _ = input_gradient(model, images, labels)
    direction = -1.0 if targeted else 1.0
    return (images + direction * scale * gradient).clamp(0.0, 1.0)


def fgsm(model, images, labels, epsilon, targeted=False):
    """Fast gradient sign method (Goodfellow et al., 2015): ``images + epsilon * sign(gradient)``, clipped to [0, 1].

    Args:
        epsilon: L-infinity size in pixel units ([0, 1] scale; 2/255 is two grey levels).
    Returns:
        (batch, channels, height, width), within ``epsilon`` of ``images`` and inside [0, 1].
    """
    images, labels = _check(images, labels, epsilon)
    return _signed_step(model, images, labels, epsilon, targeted)


def _signed_step(model, images, labels, size, targeted):
    """``images + size * sign(gradient)`` (minus for targeted), clipped to [0, 1]; arguments already checked."""
    gradient, _ = input_gradient(model, images, labels)
    direction = -1.0 if targeted else 1.0
    return (images + direction * size * gradient.sign()).clamp(0.0, 1.0)


def pgd(model, images, labels, epsilon, step_size=None, steps=10, targeted=False):
    """Projected gradient descent (Madry et al., 2018) in the L-infinity ball, from the clean image (no random start).

    Each step: an FGSM step of ``step_size`` (default ``2.5 * epsilon / steps``), then projection onto the
    ``epsilon`` ball around ``images`` and onto [0, 1].

    Returns:
        (batch, channels, height, width), within ``epsilon`` of ``images`` and inside [0, 1].
    """
    images, labels = _check(images, labels, epsilon)
    if not isinstance(steps, numbers.Integral) or steps < 1:
        raise ValueError(f"steps must be a whole number of at least 1, got {steps}")
    if step_size is None:
        step_size = 2.5 * epsilon / steps
    elif not (math.isfinite(step_size) and step_size >= 0):
        raise ValueError(f"step_size must be a finite number >= 0 (pixel units of [0, 1]), got {step_size}")
    adversarial = images.clone()
    for _ in range(steps):
        stepped = _signed_step(model, adversarial, labels, step_size, targeted)
        adversarial = (images + (stepped - images).clamp(-epsilon, epsilon)).clamp(0.0, 1.0)
    return adversarial


ATTACKS = ("gradient", "fgsm", "pgd")


def attack(model, images, labels, method="pgd", epsilon=2 / 255, steps=10, scale=1.0, targeted=False):
    """Run ``method`` (``"gradient"``, ``"fgsm"`` or ``"pgd"``) on a batch; ``scale`` is for ``"gradient"`` only,
    ``epsilon`` and ``steps`` for the others. Returns the adversarial images (batch, channels, height, width)."""
    if method == "gradient":
        return gradient_step(model, images, labels, scale, targeted=targeted)
    if method == "fgsm":
        return fgsm(model, images, labels, epsilon, targeted=targeted)
    if method == "pgd":
        return pgd(model, images, labels, epsilon, steps=steps, targeted=targeted)
    raise ValueError(f"Unknown attack {method!r}: choose one of {', '.join(ATTACKS)}")


def linf_size(images, adversarial):
    """Per-image L-infinity distance (batch,) in pixel units of 1/255."""
    return (adversarial - images).flatten(1).abs().max(dim=1).values * 255


def success_rate(fooled, correct):
    """``(number fooled, number of correctly classified images, fraction)`` over booleans (batch,)."""
    fooled = torch.as_tensor(fooled, dtype=torch.bool)
    correct = torch.as_tensor(correct, dtype=torch.bool)
    count, total = int((fooled & correct).sum()), int(correct.sum())
    return count, total, (count / total if total else float("nan"))


def evaluate_attack(classifier, images, classes, method="pgd", epsilon=2 / 255, steps=10, scale=1.0, target=None,
                    batch_size=16):
    """Attack a batch with a :class:`lib.implicit.vision.Classifier` and say, per image, whether the network was fooled.

    Args:
        images: (batch, 3, 224, 224) in [0, 1]; classes: per image, the class indices that count as correct, or None
        when unknown (then the prediction before the attack stands in for it); target: class index for a targeted
        attack, else None; batch_size: images per attack call.

    Returns:
        dict with ``adversarial`` (batch, 3, 224, 224), ``before`` and ``after`` (top-3 (name, probability) lists),
        ``linf`` (batch,) in 1/255 units, ``correct`` (per image True/False, None when the class is unknown) and
        ``fooled`` (untargeted: the top-1 class left the correct classes, or changed when they are unknown;
        targeted: the top-1 class is the target).
    """
    model, categories = classifier.model, classifier.categories
    with torch.no_grad():
        logits = torch.cat([model(chunk) for chunk in images.split(batch_size)])
    predicted = logits.argmax(dim=1).tolist()
    known = [tuple(c) if c is not None else (p,) for c, p in zip(classes, predicted)]
    if target is None:
        labels, targeted = label_mask(known, logits.shape[1]), False
    else:
        labels, targeted = torch.full((len(images),), target, dtype=torch.long), True
    adversarial = torch.cat([attack(model, chunk, chunk_labels, method, epsilon, steps, scale, targeted)
                             for chunk, chunk_labels in zip(images.split(batch_size), labels.split(batch_size))])
    with torch.no_grad():
        adversarial_logits = torch.cat([model(chunk) for chunk in adversarial.split(batch_size)])
    after = adversarial_logits.argmax(dim=1).tolist()
    if targeted:
        fooled = [a == target for a in after]
    else:
        fooled = [a not in k for a, k in zip(after, known)]
    correct = [None if c is None else p in c for c, p in zip(classes, predicted)]
    return {"adversarial": adversarial, "before": top_k(logits, categories),
            "after": top_k(adversarial_logits, categories), "linf": linf_size(images, adversarial),
            "correct": correct, "fooled": fooled}
