"""Importing PyTorch checkpoints (models/convert_torch.py): numerical parity with PyTorch definitions of both
upstream architectures (models/torch_reference.py), the run directory it writes, and bad input.

Skipped when torch is not installed (pip install -r requirements-torch.txt).
"""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

import tensorflow as tf  # noqa: E402

from conftest import ROOT  # noqa: E402
from data.scales import to_uint8_pixels  # noqa: E402
from models import torch_reference as R  # noqa: E402
from models.convert_torch import (import_networks, load_state_dict, read_checkpoints,  # noqa: E402
                                  to_tensorflow_layout)
from models.layers import Conv, ConvTranspose  # noqa: E402
from models.ops import compose  # noqa: E402
from utils.errors import UserError  # noqa: E402

TOLERANCE = 1e-4  # max abs difference, every output, float32
OUTPUTS = ("color", "attention", "composed", "realness", "aus")


def randomise(module, seed):
    """Weights N(0, 1 / fan_in), and random biases and instance-norm gammas / betas, so that a bias or norm
    parameter mapped to the wrong place shows in the outputs."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
                w = m.weight
                fan_in = w.shape[1 if isinstance(m, torch.nn.Conv2d) else 0] * w.shape[2] * w.shape[3]
                w.copy_(torch.randn(w.shape, generator=g) / fan_in ** 0.5)
                if m.bias is not None:
                    m.bias.copy_(torch.rand(m.bias.shape, generator=g) - 0.5)
            elif isinstance(m, torch.nn.InstanceNorm2d) and m.affine:
                m.weight.copy_(0.5 + torch.rand(m.weight.shape, generator=g))
                m.bias.copy_(torch.rand(m.bias.shape, generator=g) - 0.5)
    return module


def inputs(batch=4, size=128, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.uniform(-1, 1, (batch, size, size, 3)).astype(np.float32)
    aus = rng.uniform(0, 1, (batch, 17)).astype(np.float32)
    return images, aus


def torch_outputs(G, D, images, aus):
    """The PyTorch networks' outputs, NHWC numpy."""
    nhwc = lambda t: t.numpy().transpose(0, 2, 3, 1)  # noqa: E731
    with torch.no_grad():
        x, y = torch.from_numpy(images.transpose(0, 3, 1, 2).copy()), torch.from_numpy(aus)
        color, attention = G(x, y)
        composed = R.compose(attention, x, color)
        realness, au_out = D(x)
    return dict(color=nhwc(color), attention=nhwc(attention), composed=nhwc(composed), realness=nhwc(realness),
                aus=au_out.numpy())


def tf_outputs(G, D, images, aus):
    G.eval()
    D.eval()
    x = tf.constant(images)
    color, attention = G([x, tf.constant(aus)])
    realness, au_out = D(x)
    return dict(color=color.numpy(), attention=attention.numpy(), composed=compose(attention, x, color).numpy(),
                realness=realness.numpy(), aus=au_out.numpy())


def assert_parity(G_torch, D_torch, G_tf, D_tf, batch):
    images, aus = inputs()
    images, aus = images[:batch], aus[:batch]
    want, got = torch_outputs(G_torch, D_torch, images, aus), tf_outputs(G_tf, D_tf, images, aus)
    diffs = {}
    for k in OUTPUTS:
        assert got[k].shape == want[k].shape, k
        diffs[k] = float(np.abs(got[k] - want[k]).max())
    print(f"batch {batch} max abs diffs: " + ", ".join(f"{k} {v:.2e}" for k, v in diffs.items()))
    assert max(diffs.values()) <= TOLERANCE, diffs
    assert np.abs(want["realness"]).max() > 0.05 and np.abs(want["aus"]).max() > 0.05  # not vanishingly small


# --- checkpoints, written once per module -------------------------------------------------------------------

@pytest.fixture(scope="module")
def upstream(tmp_path_factory):
    """Randomised full-size (128 px) PyTorch networks of both variants and their saved state dicts, and the
    command converting the official ones, started at once so that it runs while the replicate tests do.

    The official generator's file carries old PyTorch's unused instance-norm running_mean / running_var
    buffers; the replicate generator's file is saved from DataParallel (`module.` prefix)."""
    folder = tmp_path_factory.mktemp("pth")
    out = {}
    for seed, variant in enumerate(("official", "replicate")):
        G, D = R.build(variant)
        randomise(G, 2 * seed), randomise(D, 2 * seed + 1)
        g_state = G.state_dict()
        if variant == "official":
            for name, m in G.named_modules():
                if isinstance(m, torch.nn.InstanceNorm2d):
                    g_state[f"{name}.running_mean"] = torch.zeros(m.num_features)
                    g_state[f"{name}.running_var"] = torch.ones(m.num_features)
        else:
            g_state = {f"module.{k}": v for k, v in g_state.items()}
        gen, dis = str(folder / f"{variant}_G.pth"), str(folder / f"{variant}_D.pth")
        torch.save(g_state, gen)
        torch.save(D.state_dict(), dis)
        out[variant] = dict(G=G, D=D, gen=gen, dis=dis)
        if variant == "official":
            run_dir = str(tmp_path_factory.mktemp("runs") / "official")
            process = start_command("--gen", gen, "--dis", dis, "--variant", "official", "--out", run_dir)
            out["command"] = dict(run_dir=run_dir, process=process)
    yield out
    if process.poll() is None:  # only when the tests that wait for it were deselected
        process.kill()
        process.communicate()
    for path in (folder, os.path.dirname(run_dir)):  # about 1.3 GB: do not keep it in pytest's last 3 basetemps
        shutil.rmtree(path, ignore_errors=True)


def start_command(*args):
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.Popen([sys.executable, "-m", "models.convert_torch", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def run_command(*args):
    process = start_command(*args)
    stdout, stderr = process.communicate(timeout=300)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


@pytest.fixture(scope="module")
def replicate_networks(upstream):
    """The replicate checkpoints (generator with `module.` keys) converted through the Python API."""
    up = upstream["replicate"]
    checkpoints = read_checkpoints(up["gen"], up["dis"], "replicate")
    assert checkpoints.net.g_norm_affine is False and checkpoints.net.g_conv_bias is True
    return import_networks(checkpoints, name_suffix="_replicate_imported")


@pytest.fixture(scope="module")
def official_run(upstream):
    """The official checkpoints converted by the command, as a user runs it."""
    run_dir, process = upstream["command"]["run_dir"], upstream["command"]["process"]
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr
    assert stdout.strip().splitlines()[-1] == run_dir
    return run_dir, stderr


@pytest.fixture(scope="module")
def official_networks(official_run):
    """The run directory's checkpoint restored as `train.py --resume` does."""
    from training.config import read_run_config
    from training.state import TrainingState
    run_dir, _ = official_run
    run = TrainingState(read_run_config(run_dir), run_dir, name_suffix="_official_resumed")
    assert run.restore()
    return run.G, run.D


# --- parity (the replicate first: the command converting the official checkpoints runs meanwhile) -------------

@pytest.mark.slow  # its fixtures upstream + official_run: 34 s under load
@pytest.mark.parametrize("batch", [1, 4])
@pytest.mark.subprocess
def test_replicate_parity_through_the_python_api(upstream, replicate_networks, batch):
    assert_parity(upstream["replicate"]["G"], upstream["replicate"]["D"], *replicate_networks, batch)


@pytest.mark.slow  # its fixtures upstream + official_run: 34 s under load
@pytest.mark.parametrize("batch", [1, 4])
@pytest.mark.subprocess
def test_official_parity_through_the_command_and_its_checkpoint(upstream, official_networks, batch):
    assert_parity(upstream["official"]["G"], upstream["official"]["D"], *official_networks, batch)


@pytest.mark.slow  # its fixtures upstream + official_run: 34 s under load
@pytest.mark.subprocess
def test_the_export_edits_like_pytorch(upstream, official_run):
    """The SavedModel that infer.py loads: uint8 in and out, AUs on the 0-5 scale."""
    from inference.edit import load_model, resolve_model_dir
    run_dir, _ = official_run
    model = load_model(resolve_model_dir(run_dir))
    images, aus = inputs(batch=1)
    images_uint8 = to_uint8_pixels(tf.constant(images)).numpy()
    pixels = images_uint8.astype(np.float32) / 127.5 - 1.0
    want = torch_outputs(upstream["official"]["G"], upstream["official"]["D"], pixels, aus)
    out = model.edit(images_uint8, aus * 5.0)
    expected = to_uint8_pixels(tf.constant(want["composed"])).numpy()
    assert np.abs(out["images"].astype(int) - expected.astype(int)).max() <= 1  # rounding at .5 only
    assert np.abs(out["attention"] - want["attention"]).max() <= TOLERANCE
    assert np.abs(model.estimate_aus(images_uint8) - 5.0 * want["aus"]).max() <= 5 * TOLERANCE


@pytest.mark.slow  # its fixtures upstream + official_run: 34 s under load
@pytest.mark.subprocess
def test_the_command_writes_a_resumable_run_directory(official_run):
    run_dir, stderr = official_run
    assert sorted(os.listdir(run_dir)) == ["checkpoints", "config.json", "export", "log.txt"]
    config = json.load(open(os.path.join(run_dir, "config.json")))
    assert (config["image_size"], config["g_conv_dim"], config["n_res"], config["d_layers"]) == (128, 64, 6, 6)
    assert config["g_norm_affine"] is True and config["g_conv_bias"] is False
    meta = json.load(open(os.path.join(run_dir, "export", "ganimation.json")))
    assert meta["run_dir"] == run_dir and meta["imported_from"]["variant"] == "official"
    assert "skipped 34 instance-norm buffers" in stderr  # 17 norms x running_mean / running_var
    assert not [f for f in os.listdir(os.path.dirname(run_dir)) if f.startswith(".")]  # no temporary folder left


# --- layouts, unit by unit -------------------------------------------------------------------------------------

def test_conv_and_transposed_conv_kernel_layouts(name):
    torch.manual_seed(1)
    x = np.random.default_rng(1).normal(size=(2, 8, 8, 5)).astype(np.float32)
    x_torch = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
    for module, layer, kind in [
            (torch.nn.Conv2d(5, 7, 4, 2, 1), Conv(7, 4, 2, 1, in_channels=5, name=name("conv")), "conv"),
            (torch.nn.ConvTranspose2d(5, 7, 4, 2, 1), ConvTranspose(7, 4, 2, 1, in_channels=5, name=name("deconv")),
             "deconv")]:
        layer.W.assign(to_tensorflow_layout(module.weight.detach().numpy(), kind))
        layer.b.assign(module.bias.detach().numpy())
        with torch.no_grad():
            want = module(x_torch).numpy().transpose(0, 2, 3, 1)
        got = layer.forward(tf.constant(x)).numpy()
        assert got.shape == want.shape and np.abs(got - want).max() < 1e-5, kind


def test_module_prefix_is_removed(tmp_path):
    state = {"main.0.weight": torch.ones(2, 3), "main.0.bias": torch.zeros(2)}
    torch.save({f"module.{k}": v for k, v in state.items()}, tmp_path / "dp.pth")
    assert sorted(load_state_dict(str(tmp_path / "dp.pth"))) == sorted(state)


# --- bad input ----------------------------------------------------------------------------------------------

SMALL = dict(image_size=64, conv_dim=4, repeat_num=1)


def small_state(variant, network="G", c_dim=17, **overrides):
    dims = dict(SMALL, **overrides)
    gen, dis = R.ARCHITECTURES[variant]
    model = gen(**dims, c_dim=c_dim) if network == "G" else dis(dims["image_size"], dims["conv_dim"], c_dim=c_dim)
    return model.state_dict()


def save(tmp_path, name, obj):
    path = str(tmp_path / name)
    torch.save(obj, path)
    return path


def assert_data_error(gen, dis=None, variant="official", *words, image_size=None):
    with pytest.raises(UserError) as e:
        read_checkpoints(gen, dis, variant, image_size)
    message = str(e.value)
    assert "\n" not in message
    for w in words:
        assert w in message, message
    return message


def test_not_a_state_dict(tmp_path):
    text = tmp_path / "notes.pth"
    text.write_text("not a checkpoint\n")
    assert_data_error(str(text), None, "official", "notes.pth", "not a PyTorch state dict")
    assert_data_error(str(tmp_path / "missing.pth"), None, "official", "does not exist")
    whole_model = save(tmp_path, "model.pth", R.OfficialGenerator(**SMALL))  # pickled module, not a state dict
    assert_data_error(whole_model, None, "official", "pickled objects beyond tensors", "state_dict()")
    assert_data_error(save(tmp_path, "tensor.pth", torch.zeros(3)), None, "official", "not a state dict",
                      "Tensor")
    with_epoch = dict(small_state("official"), epoch=3)
    assert_data_error(save(tmp_path, "epoch.pth", with_epoch), None, "official", "key epoch holds a int")


def test_missing_unknown_and_misshapen_keys(tmp_path):
    state = small_state("official")
    del state["main.3.weight"]
    assert_data_error(save(tmp_path, "a.pth", state), None, "official", "missing key main.3.weight")
    state = dict(small_state("official"), **{"main.30.weight": torch.zeros(3)})
    assert_data_error(save(tmp_path, "b.pth", state), None, "official", "unknown key main.30.weight")
    state = small_state("official")
    state["main.1.weight"] = torch.ones(5)
    assert_data_error(save(tmp_path, "c.pth", state), None, "official",
                      "key main.1.weight", "shape (5,) in the checkpoint", "(4,) expected")
    state = small_state("official")
    state["main.4.bias"][0] = float("nan")
    assert_data_error(save(tmp_path, "d.pth", state), None, "official", "main.4.bias", "NaN")


def test_another_architecture_or_size(tmp_path):
    five_labels = save(tmp_path, "five.pth", small_state("official", c_dim=5))  # StarGAN-like: 3 + 5 channels in
    assert_data_error(five_labels, None, "official", "key main.0.weight", "(4, 8, 7, 7)", "(4, 20, 7, 7)")
    replicate = save(tmp_path, "replicate_G.pth", small_state("replicate"))
    assert_data_error(replicate, None, "official", "ganimation_replicate", "--variant replicate")
    dis = save(tmp_path, "D.pth", small_state("official", "D"))
    assert_data_error(dis, None, "official", "discriminator", "--dis")
    gen = save(tmp_path, "G.pth", small_state("official"))
    assert_data_error(gen, dis, "official", "key conv2.weight", "(17, 128, 1, 1)", "(17, 128, 2, 2)",
                      image_size=128)  # a 64-pixel critic read as a 128-pixel one
    checkpoints = read_checkpoints(gen, dis, "official")  # the sizes are read from the checkpoints
    c = checkpoints.net
    assert (c.image_size, c.g_conv_dim, c.n_res, c.d_conv_dim, c.d_layers) == (64, 4, 1, 4, 6)


def test_only_the_tile_generator_can_be_imported(tmp_path):
    gen = save(tmp_path, "G.pth", small_state("official"))
    with pytest.raises(UserError, match="cannot import with conditioning adain"):
        read_checkpoints(gen, None, "official", net_overrides={"conditioning": "adain"})
    assert read_checkpoints(gen, None, "official").net.conditioning == "tile"


@pytest.mark.subprocess
def test_the_command_fails_with_one_line_and_writes_nothing(tmp_path):
    gen = save(tmp_path, "G.pth", small_state("replicate", c_dim=5))
    out = tmp_path / "runs" / "imported"
    result = run_command("--gen", gen, "--variant", "replicate", "--out", str(out))
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.stderr
    assert "model.0.weight" in lines[0] and "(4, 8, 7, 7)" in lines[0] and "(4, 20, 7, 7)" in lines[0], lines[0]
    assert not os.path.exists(out.parent)
    existing = tmp_path / "taken"
    existing.mkdir()
    result = run_command("--gen", gen, "--variant", "replicate", "--out", str(existing))
    assert result.returncode == 2 and "already exists" in result.stderr


@pytest.mark.slow  # 35 s under load
def test_a_killed_import_is_finished_or_removed_by_the_next_one(tmp_path):
    """Kills injected at the run directory's last file operations (tests/test_folders.py): config.json (written
    last, the marker) and the folder into place. Killed after it was complete, the run directory is recovered
    (and the next import says it exists); killed before, the next import removes the leftover and writes it."""
    from training.import_torch import check_new_run_dir, write_run_dir
    from test_folders import killed_at
    checkpoints = read_checkpoints(save(tmp_path, "G.pth", small_state("official")), None, "official")
    with killed_at(None) as calls:
        write_run_dir(checkpoints, str(tmp_path / "count" / "run"), name_suffix="_kill_count")
    total = calls[0]
    for n, complete in ((total, True), (total - 1, False)):
        parent = tmp_path / f"kill{n}"
        with killed_at(n):
            write_run_dir(checkpoints, str(parent / "run"), name_suffix=f"_kill{n}")
        assert not (parent / "run").exists() and len(os.listdir(parent)) == 1  # the hidden temporary folder
        if complete:
            with pytest.raises(UserError, match="already exists"):
                check_new_run_dir(str(parent / "run"))
        else:
            write_run_dir(checkpoints, str(parent / "run"), name_suffix=f"_kill{n}_again")
        assert os.listdir(parent) == ["run"]
        assert sorted(os.listdir(parent / "run")) == ["checkpoints", "config.json", "export", "log.txt"]
