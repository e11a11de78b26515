"""Input gradients: the Jacobian of a loss with respect to the input, saliency maps and SmoothGrad.

Implicit attention: where a trained network "looks" is read off the gradient of its loss with respect to the input
pixels (Simonyan et al., 2014, https://arxiv.org/abs/1312.6034).
"""
import torch
import torch.nn.functional as F


def calculate_jacobian(input, target, model, criterion):
    """Gradient of ``criterion(model(input), target)`` with respect to ``input``, in one backward pass.

    Args:
        input: tensor of any shape, typically images (batch, channels, height, width).
        target: whatever ``criterion`` takes, e.g. class indices (batch,).
        model: module or callable; its train/eval mode is left as it is.
        criterion: callable ``(output, target) -> scalar loss``.

    Returns:
        ``(gradient, output)``: d loss / d input with the shape of ``input``, and the model output, e.g. logits
        (batch, num_classes), detached. The caller's tensor keeps its ``requires_grad`` and the parameters' ``.grad``
        stay as they were (only the input gradient is computed). A mean-reduced loss over a batch scales each
        image's gradient by 1 / batch; use a sum-reduced loss for per-image gradients independent of the batch.
    """
    if not torch.is_tensor(input):
        raise TypeError(f"input must be a tensor, not {type(input).__name__}")
    if not input.is_floating_point():
        raise TypeError(f"input must be a floating-point tensor to be differentiated, not {input.dtype}")
    leaf = input.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        output = model(leaf)
        loss = criterion(output, target)
        if not torch.is_tensor(loss) or loss.numel() != 1:
            shape = tuple(loss.shape) if torch.is_tensor(loss) else type(loss).__name__
            raise ValueError(f"criterion must return a scalar loss, got {shape}; reduce it with mean or sum")
        (gradient,) = torch.autograd.grad(loss.reshape(()), leaf, allow_unused=True)
    if gradient is None:  # the loss does not depend on the input
        gradient = torch.zeros_like(leaf)
    return gradient, output.detach()


def summed_cross_entropy(output, target):
    """Cross-entropy summed over the batch: each image's input gradient does not depend on the batch size."""
    return F.cross_entropy(output, target, reduction="sum")


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


def smoothgrad(model, images, labels, samples=16, noise=0.15, batch_size=32, generator=None):
    """SmoothGrad (Smilkov et al., 2017): the mean input gradient over noisy copies of each image.

    Args:
        model: classifier taking ``images``; labels: class indices (batch,).
        images: (batch, channels, height, width), pixels in [0, 1].
        samples: noisy copies per image; noise: standard deviation of the Gaussian noise in pixel units (0.15 is 15%
            of the [0, 1] range, inside the 10-20% the paper recommends); the copies are not clipped.
        batch_size: copies per forward/backward pass; generator: ``torch.Generator`` for reproducible noise.

    Returns:
        ``(gradient, output)``: mean gradient of the summed cross-entropy (batch, channels, height, width) and the
        logits of the clean images (batch, num_classes).
    """
    if samples < 1:
        raise ValueError(f"samples must be at least 1, got {samples}")
    images = images.detach()
    labels = torch.as_tensor(labels, device=images.device)
    with torch.no_grad():
        output = model(images)
    copies = images.repeat_interleave(samples, dim=0)
    copies = copies + noise * torch.randn(copies.shape, generator=generator).to(copies)
    copy_labels = labels.repeat_interleave(samples)
    gradient = torch.cat([calculate_jacobian(chunk, chunk_labels, model, summed_cross_entropy)[0]
                          for chunk, chunk_labels in zip(copies.split(batch_size), copy_labels.split(batch_size))])
    gradient = gradient.view(images.shape[0], samples, *images.shape[1:]).mean(dim=1)
    return gradient, output


def input_saliency(model, images, labels, method="gradient", samples=16, noise=0.15, generator=None):
    """Saliency maps of ``images`` for ``labels``: plain input gradient or SmoothGrad.

    Args:
        images: (batch, 3, height, width) in [0, 1]; labels: class indices (batch,).
        method: ``"gradient"`` (one forward and one backward pass for the batch) or ``"smoothgrad"``.

    Returns:
        ``(maps, output)``: saliency (batch, height, width) in [0, 1] and the logits (batch, num_classes).
    """
    if method == "gradient":
        gradient, output = calculate_jacobian(images, torch.as_tensor(labels), model, summed_cross_entropy)
    elif method == "smoothgrad":
        gradient, output = smoothgrad(model, images, labels, samples=samples, noise=noise, generator=generator)
    else:
        raise ValueError(f"Unknown saliency method {method!r}: use 'gradient' or 'smoothgrad'")
    return saliency_map(gradient), output
