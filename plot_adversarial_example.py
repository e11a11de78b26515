"""Adversarial examples: fool a pretrained ImageNet classifier with a perturbation too small to see.

Draws, for each image, the original, the perturbation (amplified so it is visible; the factor is in its title) and the
adversarial image, each with its top-3 predictions, and prints a table: image, prediction before and after, the
perturbation's L-infinity size in units of 1/255, and whether the network was fooled.
Runs offline on scikit-image photos by default; see --help for your own images or the exercise's ImageNet samples.
"""
import argparse

from lib import plot
from lib.implicit import adversarial, image_cli, vision
from lib.cli import float_range, int_range, run_main

MAX_EPSILON = 255  # in 1/255: a budget of the whole pixel range; more cannot be meant
MAX_STEPS = 1000
MAX_SCALE = 1e6  # the step is clipped to the pixel range anyway; a larger factor changes nothing


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--attack", default="pgd", choices=adversarial.ATTACKS,
                        help="gradient: the exercise's one step along the scaled input gradient (unbounded); "
                             "fgsm: one signed step of size epsilon; pgd: signed steps projected onto the epsilon "
                             "ball (default)")
    parser.add_argument("--epsilon", type=float_range(0, MAX_EPSILON), default=2.0,
                        help=f"fgsm/pgd: L-infinity bound in pixel units of 1/255, from 0 to {MAX_EPSILON} (the whole "
                             f"pixel range; default 2)")
    parser.add_argument("--steps", type=int_range(1, MAX_STEPS), default=10,
                        help=f"pgd: number of steps, 1 to {MAX_STEPS} (default 10)")
    parser.add_argument("--scale", type=float_range(0, MAX_SCALE, low_open=True), default=1.0,
                        help=f"gradient: factor (above 0, at most {MAX_SCALE:g}) on the input gradient of the summed "
                             "cross-entropy (default 1)")
    parser.add_argument("--target", metavar="CLASS",
                        help="targeted attack: ImageNet class name (e.g. 'goldfish') or index 0..999 to reach")
    image_cli.add_max_plot_argument(parser, 4)
    parser.add_argument("--out", default=None, metavar="PATH",
                        help="figure file, e.g. a .png, .jpg or .pdf (default: results/adversarial_<attack>.png)")
    image_cli.add_image_arguments(parser, vision.ADVERSARIAL_PHOTOS, vision.ADVERSARIAL_SAMPLES)
    return parser


def parse_args(argv=None):
    """Parse the command line (``argv``: list of strings, None: ``sys.argv``)."""
    return build_parser().parse_args(argv)


def caption(predictions):
    return "\n".join(f"{rank}. {label} {probability:.2f}" for rank, (label, probability) in enumerate(predictions, 1))


def main(args, classifier=None):
    """Run the script with parsed ``args``; ``classifier`` reuses an already loaded one (else --model is loaded)."""
    image_cli.check_image_args(args)  # every flag is checked before the images and the model are loaded
    path = image_cli.figure_path(args, f"results/adversarial_{args.attack}.png")
    categories = vision.imagenet_categories()
    target = None if args.target is None else vision.class_index(args.target, categories)
    items = image_cli.items_from_args(args, categories, exclude=[path])
    classifier = image_cli.classifier_from_args(args, classifier)
    names, images, classes = vision.batch_from_items(classifier, items, args.views)
    report = adversarial.evaluate_attack(classifier, images, classes, args.attack, epsilon=args.epsilon / 255,
                                         steps=args.steps, scale=args.scale, target=target)
    if args.attack == "gradient":
        setting = f"gradient step, scale {args.scale:g}"
    else:
        setting = f"{args.attack.upper()}, epsilon {args.epsilon:g}/255" + (
            f", {args.steps} steps" if args.attack == "pgd" else "")
    if target is not None:
        setting += f", target {classifier.categories[target]!r}"
    print(f"{classifier.name}, {setting}")
    print(image_cli.format_attack_report(names, report, targeted=target is not None))
    shown = slice(0, args.max_plot)
    plot.show_adversarial_example(images[shown], report["adversarial"][shown],
                                  [caption(p) for p in report["before"][shown]],
                                  [caption(p) for p in report["after"][shown]],
                                  path=path, show=not args.no_show, title=f"{classifier.name}: {setting}")
    print(f"saved {path}")
    return report


if __name__ == "__main__":
    run_main(main, parse_args())
