"""Shared fixtures: one torch thread per test module (the models here are small, and on a busy 2-core machine two
threads mostly wait for each other), the default ImageNet classifier loaded once per module, a process that is not
part of a torchrun group, and a folder of files of every wrong kind. Plain helpers are in tests/helpers.py."""
import pytest
import torch

from lib.implicit import vision
from tests.helpers import COLOURS, NOUNS, build_deb, random_translator, write_catalogue


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def classifier():
    """The default model (EfficientNet-Lite0, offline weights)."""
    return vision.load_classifier()


@pytest.fixture
def single_process(monkeypatch):
    """No torchrun variables in the environment, so training runs as one process (as without torchrun)."""
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)


# ---- tiny translation runs (tests of lib/training/loop.py) -------------------------------------------------

@pytest.fixture(scope="session")
def bad_input_files(tmp_path_factory):
    """{name: path}: a good corpus ("corpus") and translator ("translator"), and files of every wrong kind: random
    bytes, text, Latin-1, a corpus without sentences, numpy objects, a file to keep ("existing": b"keep"), a file
    where a folder belongs, a damaged training log ("log"), and their "folder"."""
    import numpy
    folder = tmp_path_factory.mktemp("bad_input")
    pairs = [(f"Das {german} ist {colour}.", f"The {english} is {colour_en}.")
             for german, english in NOUNS for colour, colour_en in COLOURS]
    names = {"corpus": "corpus.tsv", "translator": "translator.pth", "random": "random.bin", "notes": "notes.txt",
             "latin1": "latin1.txt", "phrases": "phrases.tsv", "numpy": "numpy.pth", "existing": "existing.pth",
             "file": "a file", "log": "log"}
    paths = {name: folder / file_name for name, file_name in names.items()}
    paths["corpus"].write_text("".join(f"{german}\t{english}\n" for german, english in pairs), encoding="utf-8")
    random_translator(pairs, 60, max_len=16, embed_dim=8, enc_layers=1, dec_layers=1,
                      num_heads=2).save(str(paths["translator"]))
    paths["random"].write_bytes(bytes((7 * i + 3) % 256 for i in range(4096)))
    paths["notes"].write_text("Ich sehe 3 Hunde.\nthis is text, not weights\n", encoding="utf-8")
    paths["latin1"].write_bytes("Das Haus ist rot.\tThe house is red.\nDas Haus ist schön.\tx\n".encode("latin-1"))
    paths["phrases"].write_text("Haus\thouse\nrotes Auto\tred car\n", encoding="utf-8")  # no full sentences
    torch.save({"array": numpy.zeros(3)}, paths["numpy"])
    paths["existing"].write_bytes(b"keep")
    paths["file"].write_text("not a folder")
    paths["log"].mkdir()
    (paths["log"] / "log.jsonl").write_text("{not json\n")
    paths["folder"] = folder
    return {name: str(path) for name, path in paths.items()}


@pytest.fixture
def deb_dir(tmp_path):
    """A folder with the .deb of 'demo-data', which holds a German and a French catalogue."""
    _, mo_path = write_catalogue(str(tmp_path / "catalogue"))
    debs = tmp_path / "debs"
    debs.mkdir()
    build_deb(str(debs), "demo-data", {"de": mo_path, "fr": mo_path})
    return str(debs)
