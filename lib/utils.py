"""The input gradient: the Jacobian of a loss with respect to the input (the exercise's ``calculate_jacobian``).

Saliency maps and SmoothGrad, built on it, are in :mod:`lib.implicit.saliency`; adversarial examples in
:mod:`lib.implicit.adversarial`."""
import torch


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
