"""The SavedModel export: both signatures, reloaded in a fresh process, same outputs as in memory."""
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import tiny_config
from models.export import export_saved_model, read_metadata
from models.networks import build_networks
from training.steps import generate
from utils.errors import UserError

RELOAD = """
import json, sys
import numpy as np
import tensorflow as tf
m = tf.saved_model.load(sys.argv[1])
d = np.load(sys.argv[2])
out = m.signatures["serving_default"](images=tf.constant(d["images"]), aus=tf.constant(d["aus"]))
est = m.signatures["estimate_aus"](images=tf.constant(d["images"]))
np.savez(sys.argv[3], edited=out["images"].numpy(), attention=out["attention"].numpy(),
         color=out["color"].numpy(), aus=est["aus"].numpy())
"""


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    import tensorflow as tf
    config = tiny_config()
    G, D = build_networks(config.net, name_suffix="_export_test")
    out = str(tmp_path_factory.mktemp("export") / "export")
    export_saved_model(G, D, out, {"image_size": config.net.image_size, "conditioning": "tile"})
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    aus = rng.uniform(0, 5, (3, 17)).astype(np.float32)
    G.eval(), D.eval()
    real = tf.cast(images, tf.float32) / 127.5 - 1
    fake, color, attention = generate(G, real, tf.constant(aus / 5.0))
    expected = dict(edited=np.clip(np.round((fake.numpy() + 1) * 127.5), 0, 255).astype(np.uint8),
                    attention=attention.numpy(), aus=D(real)[1].numpy() * 5.0)
    return out, images, aus, expected


@pytest.mark.slow  # 15 s under load
@pytest.mark.subprocess
def test_export_reloads_in_a_fresh_process_with_the_same_outputs(exported, tmp_path):
    out, images, aus, expected = exported
    np.savez(tmp_path / "in.npz", images=images, aus=aus)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    subprocess.run([sys.executable, "-c", RELOAD, out, str(tmp_path / "in.npz"), str(tmp_path / "out.npz")],
                   check=True, env=env, capture_output=True)
    got = np.load(tmp_path / "out.npz")
    assert got["edited"].dtype == np.uint8 and got["edited"].shape == (3, 32, 32, 3)
    assert np.abs(got["edited"].astype(int) - expected["edited"]).max() <= 1  # rounding at .5 only
    np.testing.assert_allclose(got["attention"], expected["attention"], atol=1e-5)
    np.testing.assert_allclose(got["aus"], expected["aus"], atol=1e-4)
    assert got["color"].dtype == np.uint8


@pytest.mark.slow  # 15 s under load
@pytest.mark.subprocess
def test_saved_model_cli_lists_both_signatures(exported):
    out = exported[0]
    cli = shutil.which("saved_model_cli") or os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    shown = subprocess.run([cli, "show", "--all", "--dir", out], capture_output=True, text=True,
                           env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"), check=True).stdout
    for signature in ("serving_default", "edit", "estimate_aus"):
        assert f"signature_def['{signature}']" in shown
    assert "outputs['attention']" in shown and "outputs['aus']" in shown


def test_metadata_and_not_an_export(exported, tmp_path):
    meta = read_metadata(exported[0])
    assert meta["image_size"] == 32 and len(meta["au_names"]) == 17
    assert meta["conditioning"] == "tile" and meta["label_size"] == 17
    old = tmp_path / "old"  # an export from before the AdaIN variant: tile, 17 AUs
    old.mkdir()
    shutil.copy(os.path.join(exported[0], "saved_model.pb"), old)
    (old / "ganimation.json").write_text('{"image_size": 32}')
    assert read_metadata(str(old))["conditioning"] == "tile" and read_metadata(str(old))["label_size"] == 17
    (old / "ganimation.json").write_text('{"image_size": 32, "conditioning": "film"}')
    with pytest.raises(UserError, match="unknown conditioning 'film'"):
        read_metadata(str(old))
    with pytest.raises(UserError, match="not a GANimation export"):
        read_metadata(str(tmp_path))
    with pytest.raises(UserError, match="does not exist"):
        read_metadata(str(tmp_path / "nope"))


@pytest.mark.slow  # 7 s under load
def test_an_adain_export_with_five_labels(tmp_path, name):
    """The export records the conditioning and label size; it edits with (N, 5) labels; infer.py and
    evaluate.py, which speak the 17 AUs, refuse it in one line."""
    from inference.edit import resolve_model_dir
    from models.export import LoadedModel
    G, D = build_networks(tiny_config(conditioning="adain").net, name_suffix=name("_adain5"), num_aus=5)
    out = str(tmp_path / "export")
    export_saved_model(G, D, out, {"image_size": 32})
    meta = read_metadata(out)
    assert (meta["conditioning"], meta["label_size"]) == ("adain", 5) and "au_names" not in meta
    model = LoadedModel(out)
    images = np.random.default_rng(1).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    assert model.edit(images, np.ones((2, 5), np.float32))["images"].shape == (2, 32, 32, 3)
    assert model.estimate_aus(images).shape == (2, 5)
    with pytest.raises(UserError, match="takes 5 labels, not the 17 AUs"):
        resolve_model_dir(out)


# --- a killed export never leaves the run without a model (utils.files.replace_folder) ---

@pytest.mark.slow  # 15 s under load
def test_a_killed_export_always_leaves_a_loadable_model(tmp_path):
    """Kill the export at each of its file operations (tests/test_folders.py injects the kills): infer.py's
    model lookup always finds a complete export, the old or the new one, and the next export leaves no
    leftovers. The export folder follows the umask, like the rest of the run folder."""
    from inference.edit import resolve_model_dir
    from models.export import LoadedModel, recover_export
    from test_folders import killed_at
    G, D = build_networks(tiny_config().net, name_suffix="_export_kill")
    template = str(tmp_path / "template" / "export")
    umask = os.umask(0o027)
    try:
        export_saved_model(G, D, template, {"image_size": 32, "step": 1})
    finally:
        os.umask(umask)
    assert os.stat(template).st_mode & 0o777 == 0o750
    with killed_at(None) as calls:  # how many file operations an export over an old one makes
        export_saved_model(G, D, template, {"image_size": 32, "step": 1})
    assert calls[0] >= 4  # the metadata, the old export aside, the new one in, the old one removed
    for n in range(1, calls[0] + 1):
        run = tmp_path / f"run{n}"
        shutil.copytree(template, run / "export")
        with killed_at(n):
            export_saved_model(G, D, str(run / "export"), {"image_size": 32, "step": 2})
        found = resolve_model_dir(str(run))  # what infer.py --model RUN does first
        assert found == str(run / "export") and read_metadata(found)["step"] in (1, 2), n
        recover_export(found, clean=True)  # what the next export does first
        assert os.listdir(run) == ["export"], n
    assert LoadedModel(found).edit(np.zeros((1, 32, 32, 3), np.uint8), np.zeros((1, 17), np.float32))


def test_an_export_stranded_by_an_earlier_version_is_recovered(exported, tmp_path):
    """Versions before replace_folder removed export/ before renaming `.export-XXXXXXXX` into its place."""
    from inference.edit import resolve_model_dir
    from models.export import recover_export
    run = tmp_path / "run"
    shutil.copytree(exported[0], run / ".export-k2x9_a0q")
    (run / ".export-zz8f3mq1").mkdir()  # a partial one: no ganimation.json
    assert resolve_model_dir(str(run)) == str(run / "export")
    recover_export(str(run / "export"), clean=True)
    assert os.listdir(run) == ["export"]
