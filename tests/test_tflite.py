"""TFLite models of the edit signature (models/tflite.py): the same outputs as the SavedModel, within a stated
tolerance per variant; a bf16 export converted through a float32 copy of its generator; bad input in one line."""
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, tiny_config
from utils.errors import UserError
from models.export import LoadedModel, export_saved_model
from models.tflite import TFLiteEditor, tflite_path, write_tflite

# Largest difference from the SavedModel allowed per variant: (gray levels of the uint8 images and color,
# attention on [0, 1]). fp32 is the same arithmetic in another order: a value at .5 may round the other way.
# fp16 rounds every weight to 11 significant bits; dynamic quantizes weights (and activations) to 8 bits.
TOLERANCE = {"fp32": (1, 1e-5), "fp16": (3, 2e-3), "dynamic": (16, 0.05)}


def faces(n, size=32, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8),
            rng.uniform(0, 5, (n, 17)).astype(np.float32))


def largest_differences(got, want):
    levels = max(np.abs(got[k].astype(int) - want[k].astype(int)).max() for k in ("images", "color"))
    return levels, np.abs(got["attention"] - want["attention"]).max()


@pytest.fixture(scope="module")
def converted(export, tmp_path_factory):
    """The session's tiny export (fp32), copied, with all three TFLite variants written into it."""
    copy = str(tmp_path_factory.mktemp("tflite") / "export")
    shutil.copytree(export, copy)
    paths = write_tflite(copy, ("fp32", "fp16", "dynamic"))
    return copy, paths


@pytest.mark.slow  # its fixture converted (three conversions): 12 s under load
def test_the_files_sit_in_the_export(converted):
    copy, paths = converted
    assert paths == [os.path.join(copy, f"edit_{v}.tflite") for v in ("fp32", "fp16", "dynamic")]
    sizes = {v: os.path.getsize(tflite_path(copy, v)) for v in ("fp32", "fp16", "dynamic")}
    assert sizes["fp16"] < 0.7 * sizes["fp32"] and sizes["dynamic"] < sizes["fp16"]
    assert not [f for f in os.listdir(copy) if f.startswith(".")]  # no temporary file left behind
    assert LoadedModel(copy).edit(*faces(1))["images"].shape == (1, 32, 32, 3)  # still an export


@pytest.mark.slow  # its fixture converted (three conversions): 12 s under load
@pytest.mark.parametrize("variant", ["fp32", "fp16", "dynamic"])
def test_outputs_match_the_saved_model(converted, variant):
    copy, _ = converted
    model, editor = LoadedModel(copy), TFLiteEditor(tflite_path(copy, variant), num_threads=1)
    signature = editor.interpreter.get_signature_list()["edit"]
    assert sorted(signature["inputs"]) == ["aus", "images"]
    assert sorted(signature["outputs"]) == ["attention", "color", "images"]
    images, aus = faces(6)
    got = editor.edit(images, aus)
    assert got["images"].dtype == got["color"].dtype == np.uint8 and got["attention"].shape == (6, 32, 32, 1)
    levels, attention = TOLERANCE[variant]
    for want in (model.edit(images, aus),  # the SavedModel's batch path
                 {k: np.concatenate([model.edit(images[i:i + 1], aus[i:i + 1])[k] for i in range(6)])
                  for k in ("images", "attention", "color")}):  # and its single-image (XLA) path
        got_levels, got_attention = largest_differences(got, want)
        assert got_levels <= levels and got_attention <= attention, (variant, got_levels, got_attention)


@pytest.mark.slow  # 10 s under load
def test_a_bf16_export_converts_through_a_float32_generator(tmp_path, name):
    from models.networks import build_networks
    config = tiny_config(precision="bf16").net
    G, D = build_networks(config, name_suffix=name("_tflite_bf16"))
    out = str(tmp_path / "export")
    meta = dict(image_size=32, precision="bf16", g_conv_dim=config.g_conv_dim, d_conv_dim=config.d_conv_dim,
                n_res=config.n_res, d_layers=config.d_layers, g_norm_affine=config.g_norm_affine,
                g_conv_bias=config.g_conv_bias)  # what training's export records
    export_saved_model(G, D, out, meta)
    write_tflite(out, ("fp32",))
    images, aus = faces(4, seed=1)
    got = TFLiteEditor(tflite_path(out, "fp32")).edit(images, aus)
    levels, attention = largest_differences(got, LoadedModel(out).edit(images, aus))
    assert levels <= 4 and attention <= 0.02  # bf16 (8 significant bits) in the SavedModel, float32 here
    del meta["g_conv_dim"]  # an export that does not say how its generator was built
    export_saved_model(G, D, out, meta)
    with pytest.raises(UserError, match="needs g_conv_dim in ganimation.json"):
        write_tflite(out)


@pytest.mark.slow  # 10 s under load
@pytest.mark.subprocess
def test_not_an_export_is_one_line(tmp_path):
    with pytest.raises(UserError, match="not a GANimation export"):
        write_tflite(str(tmp_path))
    with pytest.raises(ValueError, match="unknown TFLite variant 'int4'"):
        write_tflite(str(tmp_path), ("int4",))
    result = subprocess.run([sys.executable, "-m", "models.tflite", str(tmp_path / "nope")], cwd=ROOT,
                            capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=ROOT))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"error: {tmp_path / 'nope'}: does not exist"]


@pytest.mark.slow  # 11 s under load, and its fixture converted
@pytest.mark.subprocess
def test_the_command_writes_and_checks_the_files(converted, tmp_path):
    copy = str(tmp_path / "export")
    shutil.copytree(converted[0], copy)
    for f in os.listdir(copy):
        if f.endswith(".tflite"):
            os.remove(os.path.join(copy, f))
    result = subprocess.run([sys.executable, "-m", "models.tflite", copy], cwd=ROOT, capture_output=True, text=True,
                            env=dict(os.environ, PYTHONPATH=ROOT))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert [l.split(":")[0] for l in lines] == [tflite_path(copy, "fp32"), tflite_path(copy, "fp16")]
    assert "gray levels" in lines[0]


@pytest.mark.slow  # 7 s under load
def test_an_adain_export_converts(tmp_path, name):
    from models.networks import build_networks
    G, D = build_networks(tiny_config(conditioning="adain", adain_dim=16).net, name_suffix=name("_tflite_adain"))
    out = str(tmp_path / "export")
    export_saved_model(G, D, out, {"image_size": 32})
    write_tflite(out, ("fp32",))
    images, aus = faces(2, seed=2)
    levels, attention = largest_differences(TFLiteEditor(tflite_path(out, "fp32")).edit(images, aus),
                                            LoadedModel(out).edit(images, aus))
    assert levels <= TOLERANCE["fp32"][0] and attention <= TOLERANCE["fp32"][1]
