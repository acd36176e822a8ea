"""train.py and infer.py run as a user runs them: subprocesses, real files, exit codes."""
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

from conftest import AU_HEADER, ROOT, TINY

pytestmark = pytest.mark.subprocess  # all but one run the command lines


def run(script, *args, cwd, timeout=300):
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.run([sys.executable, os.path.join(ROOT, script), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def assert_one_line_error(result, *words):
    assert result.returncode == 2, result.stderr
    lines = [l for l in result.stderr.strip().splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    for w in words:
        assert w in lines[0], lines[0]


def _train_tiny(tmp_path_factory, run_name, *args):
    work = tmp_path_factory.mktemp("work")
    result = run("train.py", *TINY, "--epochs", "2", "--run-name", run_name, "--sample-every", "4", *args, cwd=work)
    assert result.returncode == 0, result.stderr
    return work, os.path.join(work, "runs", run_name)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny training run on the built-in faces, shared by the tests below."""
    return _train_tiny(tmp_path_factory, "tiny")


@pytest.fixture(scope="module")
def trained_adain(tmp_path_factory):
    """The same with the AdaIN generator."""
    return _train_tiny(tmp_path_factory, "tiny_adain", "--conditioning", "adain", "--adain-dim", "16")


def trained_run(request, conditioning):
    """(work folder, run directory) of the tiny run of either generator."""
    return request.getfixturevalue({"tile": "trained", "adain": "trained_adain"}[conditioning])


@pytest.mark.parametrize("conditioning", ["tile", "adain"])
@pytest.mark.slow
def test_train_writes_a_complete_run_directory(request, conditioning):
    _, run_dir = trained_run(request, conditioning)
    config = json.load(open(os.path.join(run_dir, "config.json")))
    assert config["epochs"] == 2 and config["batch"] == 4 and config["image_size"] == 32
    meta = json.load(open(os.path.join(run_dir, "export", "ganimation.json")))
    assert config["conditioning"] == meta["conditioning"] == conditioning and meta["label_size"] == 17
    metrics = [json.loads(l) for l in open(os.path.join(run_dir, "metrics.jsonl"))]
    losses = [m for m in metrics if "D/gp" in m]
    assert losses[-1]["step"] == 8 and "lr/G" in losses[-1]  # 16 faces / batch 4 * 2 epochs
    assert any("G/cyc" in m for m in metrics) and any("eval/single_gain_mean" in m for m in metrics)
    assert glob.glob(os.path.join(run_dir, "tb", "events.out.tfevents.*"))
    grid = cv2.imread(sorted(glob.glob(os.path.join(run_dir, "samples", "*.png")))[-1])
    assert grid.shape == (5 * 32, 5 * 32, 3)  # 5 faces, input|color|attention|output|reconstruction
    assert os.path.exists(os.path.join(run_dir, "checkpoints", "checkpoint"))
    assert os.path.exists(os.path.join(run_dir, "export", "saved_model.pb"))
    assert "finished 2 epochs" in open(os.path.join(run_dir, "log.txt")).read()


@pytest.mark.parametrize("conditioning", ["tile", "adain"])
@pytest.mark.slow
def test_infer_writes_one_png_per_au_row(request, conditioning, tmp_path):
    work, _ = trained_run(request, conditioning)
    face = tmp_path / "face.png"
    cv2.imwrite(str(face), np.full((50, 40, 3), 120, np.uint8))  # another size: resized to the model's 32
    aus = tmp_path / "aus.csv"
    aus.write_text(AU_HEADER + "\n" + ",".join(["0"] * 17) + "\n" + ",".join(["2.5"] * 17) + "\n")
    result = run("infer.py", "--src", str(face), "--aus", str(aus), "--out", str(tmp_path / "out"), cwd=work)
    assert result.returncode == 0, result.stderr
    outputs = sorted(glob.glob(str(tmp_path / "out" / "*.png")))
    assert [os.path.basename(p) for p in outputs] == ["face_000.png", "face_001.png"]
    assert cv2.imread(outputs[0]).shape == (32, 32, 3)


@pytest.mark.slow
def test_infer_names_outputs_by_expression(trained, tmp_path):
    work, _ = trained
    face = tmp_path / "face.png"
    cv2.imwrite(str(face), np.full((32, 32, 3), 120, np.uint8))
    result = run("infer.py", "--src", str(face), "--aus", os.path.join(ROOT, "examples", "expressions.csv"),
                 "--out", str(tmp_path / "out"), cwd=work)
    assert result.returncode == 0, result.stderr
    assert {"face_neutral.png", "face_happy.png", "face_surprise.png"} <= set(os.listdir(tmp_path / "out"))


@pytest.mark.slow
def test_infer_reads_openface_csvs(trained, tmp_path):
    work, run_dir = trained
    face = tmp_path / "face.jpg"
    cv2.imwrite(str(face), np.full((32, 32, 3), 90, np.uint8))
    names = [f"AU{n}_r" for n in "01 02 04 05 06 07 09 10 12 14 15 17 20 23 25 26 45".split()]
    header = "frame, face_id, timestamp, confidence, success, " + ", ".join(names) + ", AU01_c, AU28_c"
    row = "1, 0, 0.0, 0.98, 1, " + ", ".join(["1.5"] * 17) + ", 1, 0"
    (tmp_path / "of.csv").write_text(header + "\n" + row + "\n")
    result = run("infer.py", "--src", str(face), "--aus", str(tmp_path / "of.csv"), "--model", run_dir,
                 "--out", str(tmp_path / "o"), "--save-attention", cwd=work)
    assert result.returncode == 0, result.stderr
    assert sorted(os.listdir(tmp_path / "o")) == ["face_000.png", "face_000_attention.png"]


@pytest.mark.slow
def test_export_only_from_a_checkpoint(trained, tmp_path):
    work, run_dir = trained
    export = os.path.join(run_dir, "export")
    before = os.path.getmtime(os.path.join(export, "saved_model.pb"))
    result = run("train.py", "--export-only", "--resume", run_dir, cwd=work)
    assert result.returncode == 0, result.stderr
    assert os.path.getmtime(os.path.join(export, "saved_model.pb")) > before


@pytest.mark.slow
def test_export_only_with_tflite(trained, tmp_path):
    work, run_dir = trained
    copy = str(tmp_path / "run")
    shutil.copytree(run_dir, copy)
    result = run("train.py", "--export-only", "--resume", copy, "--tflite", cwd=work)
    assert result.returncode == 0, result.stderr
    files = sorted(f for f in os.listdir(os.path.join(copy, "export")) if f.endswith(".tflite"))
    assert files == ["edit_fp16.tflite", "edit_fp32.tflite"]
    assert "wrote edit_fp32.tflite (" in open(os.path.join(copy, "log.txt")).read()
    result = run("train.py", "--export-only", "--resume", str(tmp_path / "nope"), "--tflite", cwd=work)
    assert_one_line_error(result, "does not exist")


@pytest.mark.slow
def test_sigkill_then_resume_continues_from_the_saved_step(tmp_path):
    args = [*TINY, "--synthetic-per-identity", "50", "--epochs", "3", "--run-name", "k", "--checkpoint-every", "3"]
    env = dict(os.environ, PYTHONPATH=ROOT)
    proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "train.py"), *args], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    index = tmp_path / "runs" / "k" / "checkpoints" / "checkpoint"
    deadline = time.time() + 240
    while not index.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert index.exists(), "no checkpoint was written before the kill"
    saved = int(open(index).read().split('"')[1].split("-")[-1])
    assert 3 <= saved < 75  # killed mid-run: 100 faces / batch 4 = 25 steps per epoch, 3 epochs
    result = run("train.py", "--resume", str(tmp_path / "runs" / "k"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    log = open(tmp_path / "runs" / "k" / "log.txt").read()
    assert int(log.split("resuming at step ")[1].split()[0]) == saved
    steps = [json.loads(l)["step"] for l in open(tmp_path / "runs" / "k" / "metrics.jsonl")]
    assert steps[-1] == 75 and "finished 3 epochs" in log
    assert os.path.exists(tmp_path / "runs" / "k" / "export" / "saved_model.pb")


@pytest.mark.slow
def test_resume_keeps_the_adain_network(trained_adain, tmp_path):
    work, run_dir = trained_adain
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    assert_one_line_error(run("train.py", "--resume", str(copy), "--conditioning", "tile", cwd=work),
                          "--conditioning cannot change when resuming", "adain")
    result = run("train.py", "--resume", str(copy), "--epochs", "3", "--no-export", cwd=work)
    assert result.returncode == 0, result.stderr
    log = open(copy / "log.txt").read()
    assert "resuming at step 8" in log and "finished 3 epochs (12 steps)" in log
    assert json.load(open(copy / "config.json"))["conditioning"] == "adain"


def test_help_explains_the_flags(tmp_path):
    result = run("train.py", "--help", cwd=tmp_path)
    assert result.returncode == 0
    for flag in ("--epochs", "--batch", "--image-size", "--lambda-cond", "--decay-epochs", "--resume", "--data"):
        assert flag in result.stdout
    assert run("infer.py", "--help", cwd=tmp_path).returncode == 0


# --- bad input: one line naming the file and the problem, exit code 2, nothing written ---

@pytest.fixture
def face(tmp_path):
    path = tmp_path / "face.png"
    cv2.imwrite(str(path), np.full((32, 32, 3), 100, np.uint8))
    return path


def _aus_file(tmp_path, text, name="aus.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


GOOD_ROW = ",".join(["1"] * 17)


@pytest.mark.slow  # the `trained` fixture trains a tiny model first (about 18 s)
@pytest.mark.parametrize("case, text, words", [
    ("wrong_count", "AU01,AU02\n1,2\n", ["aus.csv", "missing"]),
    ("non_numeric", AU_HEADER + "\n" + ",".join(["x"] * 17) + "\n", ["aus.csv"]),
    ("nan", AU_HEADER + "\n" + ",".join(["nan"] + ["1"] * 16) + "\n", ["aus.csv"]),
    ("no_columns", "a,b,c\n1,2,3\n", ["aus.csv", "AU"]),
])
def test_infer_bad_au_csvs(trained, tmp_path, face, case, text, words):
    work, _ = trained
    result = run("infer.py", "--src", str(face), "--aus", str(_aus_file(tmp_path, text)),
                 "--out", str(tmp_path / "out"), cwd=work)
    assert_one_line_error(result, *words)
    assert not (tmp_path / "out").exists()


@pytest.mark.slow  # the `trained` fixture
def test_infer_bad_images_and_models(trained, tmp_path, face):
    work, run_dir = trained
    aus = _aus_file(tmp_path, AU_HEADER + "\n" + GOOD_ROW + "\n")
    out = str(tmp_path / "out")
    assert_one_line_error(run("infer.py", "--src", str(tmp_path / "none.jpg"), "--aus", str(aus), "--out", out,
                              cwd=work), "none.jpg", "does not exist")
    (tmp_path / "corrupt.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    assert_one_line_error(run("infer.py", "--src", str(tmp_path / "corrupt.jpg"), "--aus", str(aus), "--out", out,
                              cwd=work), "corrupt.jpg", "not a readable image")
    assert_one_line_error(run("infer.py", "--src", str(face), "--aus", str(aus), "--model", str(tmp_path),
                              "--out", out, cwd=work), "not a GANimation export")
    assert_one_line_error(run("infer.py", "--src", str(face), "--aus", str(aus), "--out", out, cwd=tmp_path),
                          "no exported model found")
    assert not os.path.exists(out)


def test_train_bad_data_and_flags(tmp_path):
    assert_one_line_error(run("train.py", *TINY, "--data", str(tmp_path / "nowhere"), cwd=tmp_path),
                          "nowhere", "does not exist")
    (tmp_path / "empty").mkdir()
    assert_one_line_error(run("train.py", *TINY, "--data", str(tmp_path / "empty"), cwd=tmp_path), "empty")
    assert_one_line_error(run("train.py", "--image-size", "100", cwd=tmp_path), "--image-size")
    assert_one_line_error(run("train.py", "--conditioning", "film", cwd=tmp_path), "--conditioning", "tile, adain")
    assert_one_line_error(run("train.py", "--resume", str(tmp_path / "empty"), cwd=tmp_path),
                          "not a run directory")
    assert not (tmp_path / "runs").exists()  # nothing half-written


def test_synthetic_face_command(tmp_path):
    env = dict(os.environ, PYTHONPATH=ROOT)
    out = tmp_path / "face.png"
    result = subprocess.run([sys.executable, "-m", "data.synthetic", "--identity", "3", "--aus", "12=5,AU26=4",
                             "--size", "64", "--out", str(out)], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    from data.synthetic import render_face
    expected = np.zeros(17)
    expected[8], expected[15] = 5, 4
    np.testing.assert_array_equal(cv2.imread(str(out))[:, :, ::-1], render_face(3, expected, 64))
    bad = subprocess.run([sys.executable, "-m", "data.synthetic", "--aus", "12=9", "--out", str(tmp_path / "x.png")],
                         cwd=ROOT, env=env, capture_output=True, text=True)
    assert_one_line_error(bad, "AU12=9", "outside")
    assert not (tmp_path / "x.png").exists()


def _official_layout_with_a_corrupt_image(tmp_path):
    root = tmp_path / "dataset"
    (root / "imgs").mkdir(parents=True)
    rng = np.random.default_rng(0)
    ids = [f"face_{i:02d}" for i in range(9)]
    for i in ids:
        cv2.imwrite(str(root / "imgs" / f"{i}.jpg"), rng.integers(0, 255, (40, 40, 3), dtype=np.uint8))
    (root / "imgs" / "face_08.jpg").write_bytes(b"\xff\xd8 truncated")
    (root / "aus.csv").write_text("id," + AU_HEADER + "\n" + "".join(
        f"{i}," + ",".join(f"{v:.2f}" for v in rng.uniform(0, 5, 17)) + "\n" for i in ids))
    (root / "train_ids.csv").write_text("".join(f"{i}.jpg\n" for i in ids))
    return root


@pytest.mark.slow
def test_train_on_the_official_layout_skips_a_corrupt_image(tmp_path):
    """A real-data layout through the same pipeline: imgs/ + aus.csv + train_ids.csv, one file corrupt."""
    root = _official_layout_with_a_corrupt_image(tmp_path)
    result = run("train.py", *TINY, "--data", str(root), "--epochs", "1", "--run-name", "real", "--no-export",
                 cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    log = open(tmp_path / "runs" / "real" / "log.txt").read()
    assert "8 faces, 2 steps per epoch" in log  # the corrupt file is found and left out before training
    assert "finished 1 epochs" in log


def test_train_refuses_a_batch_larger_than_the_data(tmp_path):
    result = run("train.py", *TINY, "--batch", "64", cwd=tmp_path)
    assert_one_line_error(result, "fewer than one batch of 64")
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_evaluate_writes_json_table_and_picture(trained, tmp_path):
    work, run_dir = trained
    out = tmp_path / "eval"
    result = run("evaluate.py", "--model", run_dir, "--identities", "1", "--multi", "2", "--out", str(out), cwd=work)
    assert result.returncode == 0, result.stderr
    metrics = json.load(open(out / "eval.json"))
    assert set(metrics["per_au"]) == set(AU_HEADER.split(","))
    assert np.isfinite(metrics["single_au"]["mean_gain"]) and metrics["n_identities"] == 1
    table = (out / "eval.md").read_text()
    assert "| AU12 | lip corner puller |" in table and "| no-op PSNR | " in table
    assert cv2.imread(str(out / "eval.png")).shape == (17 * 128, 4 * 128, 3)
    # Logged during training too (the tiny run's --eval-every default fires at its last step).
    assert any("eval/single_gain_mean" in json.loads(l) for l in open(os.path.join(run_dir, "metrics.jsonl")))


@pytest.mark.slow
def test_evaluate_bad_model_and_size(trained, tmp_path):
    work, run_dir = trained
    assert_one_line_error(run("evaluate.py", "--model", str(tmp_path), cwd=work), "not a GANimation export")
    assert_one_line_error(run("evaluate.py", "--model", run_dir, "--image-size", "128", "--out", str(tmp_path / "e"),
                              cwd=work), "takes 32 x 32")
    assert not (tmp_path / "e").exists()


def test_train_strict_refuses_data_with_any_problem(tmp_path):
    root = _official_layout_with_a_corrupt_image(tmp_path)
    result = run("train.py", *TINY, "--data", str(root), "--strict", cwd=tmp_path)
    assert_one_line_error(result, "--strict")
    assert not (tmp_path / "runs").exists()


# --- errors that need no TensorFlow come before its slow import; nothing but the one line on stderr ---

WITHOUT_TENSORFLOW = """
import atexit, runpy, sys
atexit.register(lambda: "tensorflow" in sys.modules and print("TENSORFLOW WAS IMPORTED", file=sys.stderr))
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def run_without_tensorflow(script, *args, cwd):
    """`run`, in an interpreter that says at exit whether TensorFlow was imported (an error found before the
    import comes at once; the import itself takes 15 s on a busy machine)."""
    env = dict(os.environ, PYTHONPATH=ROOT)
    result = subprocess.run([sys.executable, "-c", WITHOUT_TENSORFLOW, os.path.join(ROOT, script), *args], cwd=cwd,
                            env=env, capture_output=True, text=True, timeout=120)
    assert "TENSORFLOW WAS IMPORTED" not in result.stderr, result.stderr
    return result


def test_errors_that_need_no_tensorflow_come_without_it(tmp_path, face):
    missing = str(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text("{}")
    for script, args, words in [
            ("infer.py", ["--src", str(face), "--expression", "happy", "--model", missing], ["does not exist"]),
            ("infer.py", ["--src", str(face), "--expression", "happy"], ["runs: no exported model found"]),
            ("infer.py", ["--src", str(face), "--expression", "happy", "--model", str(tmp_path / "empty")],
             ["not a GANimation export"]),
            ("train.py", ["--data", missing], ["missing", "does not exist"]),
            ("train.py", ["--data", str(tmp_path / "empty")], ["empty", "no data set found"]),
            ("train.py", ["--export-only", "--resume", str(tmp_path / "run")], ["has no checkpoint to export"]),
            ("evaluate.py", ["--model", missing], ["does not exist"]),
            ("app.py", ["--model", missing], ["does not exist"])]:
        assert_one_line_error(run_without_tensorflow(script, *args, cwd=tmp_path), *words)


def test_an_image_bomb_is_one_line(tmp_path):
    from test_app import png_header
    (tmp_path / "bomb.png").write_bytes(png_header(60000, 60000))  # 3.6 gigapixels in 60 bytes
    result = run_without_tensorflow("infer.py", "--src", str(tmp_path / "bomb.png"), "--expression", "happy",
                                    "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert_one_line_error(result, "bomb.png: is too large an image (60000 x 60000 pixels, more than the limit of 50 "
                                  "megapixels)")
    assert not (tmp_path / "out").exists()


def test_no_decoder_messages_before_the_one_line(tmp_path, face):
    """libpng / OpenCV on a truncated PNG and FFmpeg on a file that is no video print to stderr themselves."""
    data = face.read_bytes()
    (tmp_path / "cut.png").write_bytes(data[:len(data) // 2])
    (tmp_path / "driver.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    assert_one_line_error(run_without_tensorflow("infer.py", "--src", str(tmp_path / "cut.png"), "--expression",
                                                 "happy", cwd=tmp_path), "cut.png: is not a readable image")
    assert_one_line_error(run_without_tensorflow("infer.py", "--src", str(face), "--driver",
                                                 str(tmp_path / "driver.mp4"), cwd=tmp_path),
                          "driver.mp4: is not a readable video")
