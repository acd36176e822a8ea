"""Shared test setup: quiet TensorFlow, the project root on sys.path, unique TensorLayer model names, the tiny\nnetworks' flags and the AU header."""
import itertools
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from utils.cli import quiet_tensorflow  # noqa: E402

quiet_tensorflow()

_names = itertools.count()

# train.py's flags for networks small enough to train in a test (the command-line twin of tiny_config)
TINY = ["--image-size", "32", "--g-conv-dim", "8", "--d-conv-dim", "8", "--n-res", "1", "--d-layers", "5",
        "--batch", "4", "--synthetic-identities", "2", "--synthetic-per-identity", "8"]
AU_HEADER = ",".join(f"AU{n}" for n in "01 02 04 05 06 07 09 10 12 14 15 17 20 23 25 26 45".split())


def pytest_collection_modifyitems(items):
    """tests/test_learning.py trains for about a minute: slow (marked here, its file belongs to the learning work)."""
    for item in items:
        if item.path.name == "test_learning.py":
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def name():
    """A fresh model name: TensorLayer model names are global to the process."""
    return lambda prefix="m": f"{prefix}_{next(_names)}"


def tiny_config(**overrides):
    """A TrainConfig for networks small enough to train in a test (flat keys, as config.json has them)."""
    from training.config import TrainConfig
    values = dict(image_size=32, g_conv_dim=8, d_conv_dim=8, n_res=1, d_layers=5, batch=4, epochs=2,
                  synthetic_identities=2, synthetic_per_identity=8, log_every=1, sample_every=1000)
    values.update(overrides)
    return TrainConfig.from_dict(values).validate()


@pytest.fixture(scope="session")
def export(tmp_path_factory):
    """One untrained tiny export (32 px) for the whole test session, built in-process (no training needed)."""
    from models.export import export_saved_model
    from models.networks import build_networks
    config = tiny_config()
    G, D = build_networks(config.net, name_suffix="_session_export")
    path = str(tmp_path_factory.mktemp("model") / "export")
    export_saved_model(G, D, path, {"image_size": config.net.image_size, "conditioning": "tile"})
    return path
