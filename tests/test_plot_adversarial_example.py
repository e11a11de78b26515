"""plot_adversarial_example.py: its table and figure are the library's attack, and each row of bad or odd input as
(flags, exit code, a fragment of what is printed), run as the script runs (lib.cli.run_main) with the default
classifier loaded once."""
import re

import pytest
import torch

import plot_adversarial_example
from lib.implicit import vision
from lib.implicit.adversarial import fgsm
from tests.helpers import cli_outcome


def coffee_as(path):
    """A setup: scikit-image's coffee cup saved as folder/PATH."""
    def setup(folder):
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        vision.photo("coffee").save(folder / path)
    return setup


ROWS = [
    ("an image without a known class", ["--images", "{tmp}/one.png"], coffee_as("one.png"), 0,
     r"the top-1 class changed on [01] of 1 images; none has a known class, so no success rate"),
    ("a misclassified image", ["--imagenet-dir", "{tmp}/imagenet", "--samples", "0"], coffee_as("imagenet/0.png"), 0,
     r"no image was classified correctly \(1 misclassified, 0 without a known class\), so there was nothing to "
     "attack"),
    ("a correctly classified image", ["--photos", "coffee"], None, 0,
     r"fooled [01] of 1 correctly classified images \((0|100).0%\)"),
]


@pytest.mark.parametrize("name, flags, setup, code, message", ROWS, ids=[row[0] for row in ROWS])
def test_each_row_ends_in_a_result_or_one_line_that_says_what_to_do(name, flags, setup, code, message, classifier,
                                                                    tmp_path, capsys):
    if setup:
        setup(tmp_path)
    flags = [flag.format(tmp=tmp_path) for flag in flags] + ["--attack", "fgsm", "--epsilon", "8", "--no-show",
                                                             "--out", str(tmp_path / "figure.png")]
    got, printed = cli_outcome(plot_adversarial_example.parse_args,
                               lambda args: plot_adversarial_example.main(args, classifier), flags, capsys)
    assert got == code and re.search(message, printed), printed
    assert "nan%" not in printed and "Traceback" not in printed


def test_adversarial_script_prints_the_table_and_draws(classifier, tmp_path, capsys):
    parser = plot_adversarial_example.build_parser()
    out = tmp_path / "adversarial.png"
    report = plot_adversarial_example.main(parser.parse_args(
        ["--photos", "coffee", "--attack", "fgsm", "--epsilon", "4", "--target", "goldfish", "--no-show",
         "--out", str(out)]), classifier)
    printed = capsys.readouterr().out
    assert "FGSM, epsilon 4/255, target 'goldfish'" in printed and "reached target" in printed
    # --epsilon is in 1/255: the script's attack is the library's FGSM of 4/255 towards class 1 (goldfish)
    _, images, _ = vision.batch_from_items(classifier, vision.photo_items(["coffee"], classifier.categories))
    expected = fgsm(classifier.model, images, torch.tensor([1]), 4 / 255, targeted=True)
    assert torch.equal(report["adversarial"], expected)
    torch.testing.assert_close(report["linf"], torch.tensor([4.0]))
    with open(out, "rb") as file:
        assert file.read(8) == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="Unknown ImageNet class 'goldfsh'"):
        flags = ["--target", "goldfsh", "--no-show", "--out", str(out), "--force"]
        plot_adversarial_example.main(parser.parse_args(flags), classifier)
