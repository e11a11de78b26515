"""Saliency speed: images per second for a batch in one forward/backward pass, one image at a time, and captum.

Prints, in one run, the throughput of ``lib.utils.calculate_jacobian`` on a batch of images (one forward and one
backward pass), on the same images one at a time, and of ``captum.attr.Saliency`` on the batch, with the largest
cosine similarity between the batched gradients and the other two (per image, the smallest) as a check that they
compute the same thing (bit-for-bit equality is not expected: rounding can flip a ReLU6 unit lying on a kink).
"""
import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from anywhere

from lib.cli import int_range, run_main, set_threads  # noqa: E402
from lib.files import check_input  # noqa: E402
from lib.implicit import vision  # noqa: E402
from lib.utils import calculate_jacobian  # noqa: E402


def build_parser():
    """The command-line flags."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="efficientnet_lite0", choices=vision.MODEL_NAMES,
                        help="pretrained classifier (default: efficientnet_lite0)")
    parser.add_argument("--weights", metavar="PATH", help="state dict for the model (resnet18/resnet50)")
    parser.add_argument("--num-images", type=int_range(1, 1024), default=32, metavar="N",
                        help="number of images, 1 to 1024 (crops of the scikit-image photos; default 32)")
    parser.add_argument("--threads", type=int_range(1, 256), default=None, metavar="N",
                        help="torch CPU threads, at least 1 (default: torch's choice)")
    parser.add_argument("--repeats", type=int_range(1, 1000), default=2, metavar="N",
                        help="time each method N times, round robin, and keep the best (default 2)")
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default cpu)")
    return parser


def target_logit(output, target):
    """The target classes' logits summed over the batch: the quantity captum's Saliency differentiates."""
    return output.gather(1, target[:, None]).sum()


def agreement(gradients, reference):
    """Smallest per-image cosine similarity between two gradient batches (batch, ...)."""
    return float(torch.nn.functional.cosine_similarity(gradients.flatten(1), reference.flatten(1), dim=1).min())


def timed(function, device):
    """(result, seconds) of ``function()``, synchronising CUDA around it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    result = function()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return result, time.perf_counter() - start


def main(args):
    """Time the three methods on ``args.num_images`` images and print the table. Returns images per second by method."""
    from captum.attr import Saliency
    if args.weights is not None:
        check_input(args.weights, "--weights", seekable=True)
    set_threads(args.threads)
    device = torch.device(args.device)
    classifier = vision.load_classifier(args.model, args.weights)
    model = classifier.model.to(device)
    items = vision.photo_items(["all"], classifier.categories)
    _, images, _ = vision.batch_from_items(classifier, items, views=10)
    images = images.repeat((args.num_images + len(images) - 1) // len(images), 1, 1, 1)[:args.num_images].to(device)
    with torch.no_grad():
        labels = model(images).argmax(dim=1)
    saliency = Saliency(model)
    pairs = list(zip(images, labels))
    methods = {
        f"calculate_jacobian, batch of {len(images)}":
            lambda: calculate_jacobian(images, labels, model, target_logit)[0],
        "calculate_jacobian, one at a time": lambda: torch.cat([
            calculate_jacobian(image[None], label[None], model, target_logit)[0] for image, label in pairs]),
        "captum Saliency(abs=False), batch": lambda: saliency.attribute(images.clone().requires_grad_(True),
                                                                        target=labels, abs=False),
    }
    calculate_jacobian(images, labels, model, target_logit)  # warm-up: allocator and kernels for both shapes
    calculate_jacobian(images[:1], labels[:1], model, target_logit)
    seconds = {name: float("inf") for name in methods}
    results = {}
    for _ in range(args.repeats):  # round robin, best of the repeats: a busy machine slows all methods alike
        for name, method in methods.items():
            results[name], elapsed = timed(method, device)
            seconds[name] = min(seconds[name], elapsed)
    n, reference = len(images), next(iter(results.values()))
    where = f"{device}" + (f", {torch.get_num_threads()} threads" if device.type == "cpu" else
                           f" ({torch.cuda.get_device_name(device)})")
    print(f"{classifier.name}, {n} images of 3x224x224 on {where}, best of {args.repeats}")
    print(f"{'method':<36} {'seconds':>8} {'images/s':>9}  cosine to batched (min over images)")
    for index, name in enumerate(methods):
        check = "-" if index == 0 else f"{agreement(results[name], reference):.6f}"
        print(f"{name:<36} {seconds[name]:>8.2f} {n / seconds[name]:>9.1f}  {check}")
    return {name: n / seconds[name] for name in methods}


if __name__ == "__main__":
    run_main(main, build_parser().parse_args())
