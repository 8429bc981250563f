"""Shared fixtures: a small fake STL-10 in the real binary layout, fixed seeds."""
import numpy as np
import pytest
import torch
from helpers import fake_stl10_images

from simple_ijepa.data.stl10 import write_stl10


@pytest.fixture(scope="session")
def fake_stl10(tmp_path_factory) -> str:
    """A data root with stl10_binary/{unlabeled,train,test}_X.bin (+ labels): 256 / 100 / 100 images."""
    root = str(tmp_path_factory.mktemp("stl10"))
    for split, n, seed in (("unlabeled", 256, 0), ("train", 100, 1), ("test", 100, 2)):
        images, labels = fake_stl10_images(n, seed)
        write_stl10(root, split, images, None if split == "unlabeled" else labels)
    return root


@pytest.fixture(autouse=True)
def _fixed_seeds():
    torch.manual_seed(0)
    np.random.seed(0)
