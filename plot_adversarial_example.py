"""Adversarial examples: fool a pretrained ImageNet classifier with a perturbation too small to see.

Draws, for each image, the original, the perturbation (amplified so it is visible; the factor is in its title) and the
adversarial image, each with its top-3 predictions, and prints a table: image, prediction before and after, the
perturbation's L-infinity size in units of 1/255, and whether the network was fooled.
Runs offline on scikit-image photos by default; see --help for your own images or the exercise's ImageNet samples.
"""
import argparse

from lib import adversarial, plot, vision


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--attack", default="pgd", choices=adversarial.ATTACKS,
                        help="gradient: the exercise's one step along the scaled input gradient (unbounded); "
                             "fgsm: one signed step of size epsilon; pgd: signed steps projected onto the epsilon "
                             "ball (default)")
    parser.add_argument("--epsilon", type=float, default=2.0,
                        help="fgsm/pgd: L-infinity bound in pixel units of 1/255 (default 2)")
    parser.add_argument("--steps", type=int, default=10, help="pgd: number of steps (default 10)")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="gradient: factor on the input gradient of the summed cross-entropy (default 1)")
    parser.add_argument("--target", metavar="CLASS",
                        help="targeted attack: ImageNet class name (e.g. 'goldfish') or index to reach")
    parser.add_argument("--max-plot", type=int, default=4, metavar="N",
                        help="draw at most the first N images (all of them go into the table; default 4)")
    parser.add_argument("--out", default=None, metavar="PATH",
                        help="figure file (default: results/adversarial_<attack>.png)")
    vision.add_image_arguments(parser, vision.ADVERSARIAL_PHOTOS, vision.ADVERSARIAL_SAMPLES)
    return parser


def caption(predictions):
    return "\n".join(f"{rank}. {label} {probability:.2f}" for rank, (label, probability) in enumerate(predictions, 1))


def main(args, classifier=None):
    """Run the script with parsed ``args``; ``classifier`` reuses an already loaded one (else --model is loaded)."""
    classifier = vision.classifier_from_args(args, classifier)
    target = None if args.target is None else classifier.class_index(args.target)
    items = vision.items_from_args(args, classifier.categories)
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
    print(adversarial.format_report(names, report, targeted=target is not None))
    shown = slice(0, args.max_plot)
    path = args.out or f"results/adversarial_{args.attack}.png"
    plot.show_adversarial_example(images[shown], report["adversarial"][shown],
                                  [caption(p) for p in report["before"][shown]],
                                  [caption(p) for p in report["after"][shown]],
                                  path=path, show=not args.no_show, title=f"{classifier.name}: {setting}")
    print(f"saved {path}")
    return report


if __name__ == "__main__":
    vision.run_script(main, build_parser())
