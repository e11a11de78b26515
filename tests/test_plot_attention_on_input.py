"""plot_attention_on_input.py: the saliency map it draws is the hand-computed one on the real classifier."""
import torch
import torch.nn.functional as F

import plot_attention_on_input
from lib.implicit import vision


def test_the_saliency_script_draws_the_hand_computed_map(classifier, tmp_path, capsys):
    out = tmp_path / "saliency"  # no extension: the figure is a PNG at saliency.png, and the script says so
    args = plot_attention_on_input.parse_args(["--photos", "coffee", "--no-show", "--out", str(out)])
    maps = plot_attention_on_input.main(args, classifier)
    assert f"saved {out}.png" in capsys.readouterr().out
    with open(f"{out}.png", "rb") as file:
        assert file.read(8) == b"\x89PNG\r\n\x1a\n"
    image = classifier.preprocess(vision.photo("coffee"))[None].requires_grad_(True)
    logits = classifier.model(image)
    assert classifier.categories[int(logits.argmax())] == "espresso"  # the true class: its loss is differentiated
    (gradient,) = torch.autograd.grad(F.cross_entropy(logits, logits.argmax(1), reduction="sum"), image)
    norm = gradient[0].norm(dim=0)
    torch.testing.assert_close(maps[0], (norm - norm.min()) / (norm.max() - norm.min()))
