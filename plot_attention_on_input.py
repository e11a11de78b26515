"""Saliency maps: where a pretrained ImageNet classifier looks, read off the gradient of its loss w.r.t. the pixels.

For each image: the image (titled with the true class where known and the top-3 predictions), the saliency map
(L2 norm of the input gradient over the colour channels, min-max scaled to [0, 1]) and the map over the image.
Runs offline on scikit-image photos by default; see --help for your own images or the exercise's ImageNet samples.
"""
import argparse

import torch

from lib import plot
from lib.implicit import image_cli, saliency, vision
from lib.cli import float_range, int_range, run_main

MAX_SAMPLES = 1000
BATCH_SIZE = 32  # images (SmoothGrad: noisy copies) per forward and backward pass: memory bounded for any count


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--method", default="gradient", choices=saliency.METHODS,
                        help="gradient: one forward and backward pass; smoothgrad: mean gradient over noisy copies")
    parser.add_argument("--smooth-samples", type=int_range(1, MAX_SAMPLES), default=16, metavar="N",
                        help=f"SmoothGrad: noisy copies per image, 1 to {MAX_SAMPLES} (default 16)")
    parser.add_argument("--noise", type=float_range(0, 1), default=0.15,
                        help="SmoothGrad: noise standard deviation in pixel units of [0, 1], from 0 to 1 "
                             "(default 0.15)")
    parser.add_argument("--seed", type=int_range(0, 2 ** 32 - 1), default=0,
                        help="SmoothGrad: seed of the noise, 0 to 2^32-1 (default 0)")
    image_cli.add_max_plot_argument(parser, 8)
    parser.add_argument("--out", default=None, metavar="PATH",
                        help="figure file, e.g. a .png, .jpg or .pdf (default: results/saliency_<method>.png)")
    image_cli.add_image_arguments(parser, vision.SALIENCY_PHOTOS, vision.SALIENCY_SAMPLES)
    return parser


def parse_args(argv=None):
    """Parse the command line (``argv``: list of strings, None: ``sys.argv``)."""
    return build_parser().parse_args(argv)


def caption(name, classes, predictions, categories):
    """Title text: image name, true class(es) where known, top-3 predictions with probabilities."""
    lines = [name if classes is None else f"{name} (true: {' / '.join(categories[c] for c in classes[:2])}"
             + (" / ..." if len(classes) > 2 else "") + ")"]
    lines += [f"{rank}. {label} {probability:.2f}" for rank, (label, probability) in enumerate(predictions, 1)]
    return "\n".join(lines)


def main(args, classifier=None):
    """Run the script with parsed ``args``; ``classifier`` reuses an already loaded one (else --model is loaded)."""
    image_cli.check_image_args(args)  # every flag is checked before the images and the model are loaded
    path = image_cli.figure_path(args, f"results/saliency_{args.method}.png")
    items = image_cli.items_from_args(args, vision.imagenet_categories(), exclude=[path])
    classifier = image_cli.classifier_from_args(args, classifier)
    names, images, classes = vision.batch_from_items(classifier, items, args.views)
    with torch.no_grad():
        predicted = torch.cat([classifier.model(chunk).argmax(dim=1) for chunk in images.split(BATCH_SIZE)])
    # The gradient of the loss for the true class where one is known and predicted, else for the top-1 prediction.
    labels = torch.tensor([p if c is None or p in c else c[0] for c, p in zip(classes, predicted.tolist())])
    generator = torch.Generator().manual_seed(args.seed)
    maps, logits = saliency.input_saliency(classifier.model, images, labels, args.method, samples=args.smooth_samples,
                                           noise=args.noise, generator=generator, batch_size=BATCH_SIZE)
    predictions = vision.top_k(logits, classifier.categories)
    captions = [caption(n, c, p, classifier.categories) for n, c, p in zip(names, classes, predictions)]
    for text in captions:
        print(text.replace("\n", " | "))
    method = ("gradient" if args.method == "gradient"
              else f"SmoothGrad ({args.smooth_samples} copies, noise {args.noise})")
    shown = slice(0, args.max_plot)
    plot.show_attention_on_input_image(images[shown], maps[shown], captions[shown], path=path, show=not args.no_show,
                                       title=f"{classifier.name}: saliency by {method}")
    print(f"saved {path}")
    return maps


if __name__ == "__main__":
    run_main(main, parse_args())
