"""Shared fixtures: one torch thread per test module (the models here are small, and on a busy 2-core machine two
threads mostly wait for each other), the default ImageNet classifier loaded once per module, and a process that is
not part of a torchrun group."""
import pytest
import torch

from lib import vision


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
