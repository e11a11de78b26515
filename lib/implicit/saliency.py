"""Saliency maps: where a classifier "looks", read off the gradient of its loss with respect to the input pixels.

Implicit attention (Simonyan et al., 2014, https://arxiv.org/abs/1312.6034). Every function here, like every attack
in :mod:`lib.implicit.adversarial`, takes ``(model, images, labels, ...)`` in that order: ``model`` maps images (batch,
channels, height, width) to logits (batch, classes); ``labels`` are class indices (batch,) or a boolean mask (batch,
classes) of classes that all count as the label. The loss is :func:`label_loss`, summed over the batch, so each
image's gradient does not depend on the other images in the batch.
"""
import math
import numbers

import torch
import torch.nn.functional as F

from lib.utils import calculate_jacobian

METHODS = ("gradient", "smoothgrad")


def label_loss(output, labels):
    """-log p(label) summed over the batch: a scalar.

    Args:
        output: logits (batch, classes).
        labels: indices (batch,) (the loss is then the summed cross-entropy), or a boolean mask (batch, classes)
            whose classes' probabilities are added (a one-hot mask gives the cross-entropy).
    """
    if labels.dim() == 1:
        return F.cross_entropy(output, labels, reduction="sum")
    inside = output.masked_fill(~labels, float("-inf")).logsumexp(dim=1)
    return (output.logsumexp(dim=1) - inside).sum()


def label_mask(classes, num_classes=1000):
    """Boolean mask (batch, num_classes) from a list (batch) of class-index collections."""
    mask = torch.zeros(len(classes), num_classes, dtype=torch.bool)
    for row, indices in enumerate(classes):
        mask[row, list(indices)] = True
    return mask


def check_batch(images, labels):
    """Check a batch and its labels; returns ``(images detached, labels as a tensor on the images' device)``.

    Raises ValueError unless ``images`` has a batch dimension and ``labels`` are indices (batch,) or a boolean mask
    (batch, classes).
    """
    if not torch.is_tensor(images) or images.dim() < 2:
        shape = tuple(images.shape) if torch.is_tensor(images) else type(images).__name__
        raise ValueError(f"images must be a batch tensor (batch, ...), got {shape}")
    labels = torch.as_tensor(labels, device=images.device)
    if labels.shape[:1] != images.shape[:1] or labels.dim() > 2 or (labels.dim() == 2 and labels.dtype != torch.bool):
        raise ValueError(f"labels must be class indices ({images.shape[0]},) or a boolean mask "
                         f"({images.shape[0]}, classes), got {labels.dtype} {tuple(labels.shape)}")
    return images.detach(), labels


def input_gradient(model, images, labels):
    """Gradient of :func:`label_loss` with respect to the images, in one forward and one backward pass.

    Returns:
        ``(gradient, output)``: (batch, channels, height, width) and the logits (batch, classes), detached.
    """
    images, labels = check_batch(images, labels)
    return calculate_jacobian(images, labels, model, label_loss)


def smoothgrad(model, images, labels, samples=16, noise=0.15, batch_size=32, generator=None):
    """SmoothGrad (Smilkov et al., 2017): the mean input gradient over noisy copies of each image.

    Args:
        images: (batch, channels, height, width), pixels in [0, 1]; labels: as for :func:`input_gradient`.
        samples: noisy copies per image; noise: standard deviation of the Gaussian noise in pixel units (0.15 is 15%
            of the [0, 1] range, inside the 10-20% the paper recommends); the copies are not clipped.
        batch_size: copies per forward/backward pass; generator: ``torch.Generator`` for reproducible noise.

    Returns:
        ``(gradient, output)``: mean gradient of :func:`label_loss` (batch, channels, height, width) and the logits
        of the clean images (batch, classes).
    """
    if not isinstance(samples, numbers.Integral) or samples < 1:
        raise ValueError(f"samples must be a whole number of at least 1, got {samples}")
    if not math.isfinite(noise) or noise < 0:
        raise ValueError(f"noise must be a finite standard deviation >= 0 (pixel units of [0, 1]), got {noise}")
    if not isinstance(batch_size, numbers.Integral) or batch_size < 1:
        raise ValueError(f"batch_size must be a whole number of at least 1, got {batch_size}")
    images, labels = check_batch(images, labels)
    with torch.no_grad():
        output = model(images)
    copies = images.repeat_interleave(samples, dim=0)
    copies = copies + noise * torch.randn(copies.shape, generator=generator).to(copies)
    copy_labels = labels.repeat_interleave(samples, dim=0)
    gradient = torch.cat([calculate_jacobian(chunk, chunk_labels, model, label_loss)[0]
                          for chunk, chunk_labels in zip(copies.split(batch_size), copy_labels.split(batch_size))])
    gradient = gradient.view(images.shape[0], samples, *images.shape[1:]).mean(dim=1)
    return gradient, output


def saliency_map(gradient):
    """Saliency from input gradients: L2 norm over the colour channels, min-max scaled to [0, 1] per image.

    Args:
        gradient: (batch, channels, height, width).

    Returns:
        (batch, height, width) in [0, 1]; an all-zero gradient gives an all-zero map.
    """
    if gradient.dim() != 4:
        raise ValueError(f"gradient must have shape (batch, channels, height, width), got {tuple(gradient.shape)}")
    norm = gradient.norm(dim=1)
    flat = norm.flatten(1)
    low = flat.min(dim=1).values[:, None, None]
    high = flat.max(dim=1).values[:, None, None]
    return (norm - low) / (high - low).clamp_min(torch.finfo(norm.dtype).tiny)


def input_saliency(model, images, labels, method="gradient", samples=16, noise=0.15, generator=None, batch_size=32):
    """Saliency maps of ``images`` for ``labels``: plain input gradient or SmoothGrad, through :func:`saliency_map`.

    Args:
        images: (batch, 3, height, width) in [0, 1]; labels: class indices (batch,) or a boolean mask.
        method: ``"gradient"`` (one forward and one backward pass) or ``"smoothgrad"`` (``samples``, ``noise`` and
            ``generator`` as for :func:`smoothgrad`).
        batch_size: images (for SmoothGrad, noisy copies) per forward and backward pass, so that memory stays
            bounded however many images there are; each image's map does not depend on it.

    Returns:
        ``(maps, output)``: saliency (batch, height, width) in [0, 1] and the logits (batch, classes).
    """
    if method not in METHODS:
        raise ValueError(f"Unknown saliency method {method!r}: choose one of {', '.join(METHODS)}")
    images, labels = check_batch(images, labels)
    per_pass = batch_size if method == "gradient" else max(1, batch_size // samples)
    parts = []
    for chunk, chunk_labels in zip(images.split(per_pass), labels.split(per_pass)):
        if method == "gradient":
            parts.append(input_gradient(model, chunk, chunk_labels))
        else:
            parts.append(smoothgrad(model, chunk, chunk_labels, samples=samples, noise=noise, batch_size=batch_size,
                                    generator=generator))
    gradient, output = (torch.cat(tensors) for tensors in zip(*parts))
    return saliency_map(gradient), output
