"""python -m data.prepare (photos -> aligned crops, split, OpenFace AUs joined) and python -m data.convert_pickle."""
import os
import pickle
import subprocess
import sys

import cv2
import numpy as np
import pytest
import skimage.data

from conftest import ROOT
from data.prepare import LARGEST, NO_CSV, NO_FACE, SEVERAL, UNREADABLE, assign_splits, main, prepare
from data.problems import Problems
from data.readers import read_dataset
from test_readers import _Evil, au_row, landmark_img_csv, py2_pickle
from utils.errors import UserError


def run_module(module, *args):
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], cwd=ROOT,
                          env=dict(os.environ, PYTHONPATH=ROOT), capture_output=True, text=True, timeout=120)


def assert_one_line_error(result, *words):
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: "), result.stderr
    for word in words:
        assert word in result.stderr, result.stderr


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """one.jpg (a face), sub/tilted.png (the face turned 15 degrees), pair.jpg (two faces), coffee.jpg (none),
    broken.jpg (corrupt JPEG bytes)."""
    folder = tmp_path_factory.mktemp("photos")
    face = np.ascontiguousarray(skimage.data.astronaut()[..., ::-1])  # BGR for OpenCV
    h, w = face.shape[:2]
    (folder / "sub").mkdir()
    cv2.imwrite(str(folder / "one.jpg"), face)
    R = cv2.getRotationMatrix2D((w / 2, h / 2), 15, 1.0)
    cv2.imwrite(str(folder / "sub" / "tilted.png"), cv2.warpAffine(face, R, (w, h), borderMode=cv2.BORDER_REFLECT))
    half = np.full_like(face, 128)
    half[128:384, 128:384] = cv2.resize(face, (256, 256), interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(folder / "pair.jpg"), np.hstack([half, face]))
    cv2.imwrite(str(folder / "coffee.jpg"), skimage.data.coffee()[..., ::-1])
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x13" * 300)
    return folder


def test_prepare_crops_one_face_per_photo_and_reports_the_rest(photos, tmp_path):
    problems = Problems()
    out = tmp_path / "set"
    rows = prepare(photos, out, test_fraction=0.5, problems=problems)
    assert sorted(r["path"] for r in rows) == ["imgs/one.jpg", "imgs/sub__tilted.jpg"]
    assert sorted(r["split"] for r in rows) == ["test", "train"]
    for r in rows:
        crop = cv2.imread(str(out / r["path"]))
        assert crop.shape == (128, 128, 3)
    assert problems.skipped == {UNREADABLE: [problems.skipped[UNREADABLE][0]], NO_FACE: ["coffee.jpg"],
                                SEVERAL: ["pair.jpg (2 faces)"]}
    assert problems.skipped[UNREADABLE][0].startswith("broken.jpg (")
    assert sorted(os.listdir(out)) == ["crops.csv", "imgs", "report.csv"]  # no manifest without AUs
    report = (out / "report.csv").read_text()
    assert "no face found,coffee.jpg" in report and "pair.jpg (2 faces)" in report
    # a prepared folder without AUs is no data set yet: the message says what is missing
    with pytest.raises(UserError, match="no data set found"):
        read_dataset(out)


def test_prepare_is_deterministic_and_handles_several_faces(photos, tmp_path):
    only_pair = tmp_path / "photos"
    only_pair.mkdir()
    (only_pair / "pair.jpg").write_bytes((photos / "pair.jpg").read_bytes())
    (only_pair / "one.jpg").write_bytes((photos / "one.jpg").read_bytes())
    first = prepare(only_pair, tmp_path / "a", mode="all")
    second = prepare(only_pair, tmp_path / "b", mode="all")
    assert [r["path"] for r in first] == ["imgs/one.jpg", "imgs/pair_face0.jpg", "imgs/pair_face1.jpg"]
    assert second == first
    for name in ("crops.csv", "imgs/one.jpg", "imgs/pair_face0.jpg", "imgs/pair_face1.jpg"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    problems = Problems()
    largest = prepare(only_pair, tmp_path / "c", mode="largest", problems=problems)
    assert [r["path"] for r in largest] == ["imgs/one.jpg", "imgs/pair.jpg"]
    assert problems.warnings == {LARGEST: ["pair.jpg (2 faces)"]}
    assert float(largest[1]["box"].split()[0]) > 512  # the full-size face, in the right half of pair.jpg


def test_a_killed_prepare_is_finished_or_removed_by_the_next_one(photos, tmp_path):
    """Kills injected at the last file operations (tests/test_folders.py): crops.csv (the marker) and the folder
    into place. The next run leaves exactly its data set. An image bomb among the photos is skipped, unread."""
    from test_app import png_header
    from test_folders import killed_at
    one = tmp_path / "photos"
    one.mkdir()
    (one / "one.jpg").write_bytes((photos / "one.jpg").read_bytes())
    (one / "bomb.png").write_bytes(png_header(60000, 60000))
    for n in (3, 4):  # 1 the crop, 2 report.csv, 3 crops.csv, 4 the folder into place
        parent = tmp_path / f"kill{n}"
        with killed_at(n):
            prepare(one, parent / "set")
        assert not (parent / "set").exists() and len(os.listdir(parent)) == 1  # the hidden temporary folder
        problems = Problems()
        rows = prepare(one, parent / "set", problems=problems)
        assert os.listdir(parent) == ["set"] and [r["path"] for r in rows] == ["imgs/one.jpg"]
        assert sorted(os.listdir(parent / "set")) == ["crops.csv", "imgs", "report.csv"]
        assert problems.skipped == {UNREADABLE: ["bomb.png (is too large an image (60000 x 60000 pixels, more "
                                                 "than the limit of 50 megapixels))"]}


def test_split_is_by_photo_and_seeded():
    rows = [{"photo": f"p{k // 2}"} for k in range(20)]  # two crops per photo
    assign_splits(rows, 0.2, seed=0)
    test = {r["photo"] for r in rows if r["split"] == "test"}
    assert len(test) == 2 and all((r["split"] == "test") == (r["photo"] in test) for r in rows)
    again = [{"photo": r["photo"]} for r in rows]
    assign_splits(again, 0.2, seed=0)
    assert [r["split"] for r in again] == [r["split"] for r in rows]
    assign_splits(again, 0.2, seed=1)
    assert {r["photo"] for r in again if r["split"] == "test"} != test


def test_openface_aus_are_joined_into_a_manifest(photos, tmp_path):
    out = tmp_path / "set"
    main(["--photos", str(photos), "--out", str(out), "--test-fraction", "0"])
    csvs = tmp_path / "openface"
    csvs.mkdir()
    landmark_img_csv(csvs / "one.csv", au_row(1), confidence=0.98)
    # OpenFace found two faces in the tilted crop: the more confident row is used
    landmark_img_csv(csvs / "sub__tilted.csv", au_row(2), confidence=0.4, extra_rows=[(0.9, au_row(3))])
    main(["--out", str(out), "--aus", str(csvs)])
    source = read_dataset(out, split="train")
    assert source.ids == ["one", "sub__tilted"]
    np.testing.assert_allclose(source.aus, [au_row(1), au_row(3)], atol=1e-5)
    os.remove(csvs / "one.csv")
    main(["--out", str(out), "--aus", str(csvs)])
    assert read_dataset(out).ids == ["sub__tilted"]
    assert f"skipped,{NO_CSV},one" in (out / "aus_report.csv").read_text()


@pytest.mark.subprocess
@pytest.mark.slow
def test_prepare_command_bad_input_leaves_nothing(photos, tmp_path):
    assert_one_line_error(run_module("data.prepare", "--photos", tmp_path / "none", "--out", tmp_path / "set"),
                          "is not a folder of photos")
    faceless = tmp_path / "faceless"
    faceless.mkdir()
    (faceless / "coffee.jpg").write_bytes((photos / "coffee.jpg").read_bytes())
    assert_one_line_error(run_module("data.prepare", "--photos", faceless, "--out", tmp_path / "set"),
                          "no face cropped", "1 no face found")
    assert sorted(os.listdir(tmp_path)) == ["faceless"]  # no data set folder, no temporary folder
    assert_one_line_error(run_module("data.prepare", "--out", tmp_path / "faceless", "--aus", faceless),
                          "no crops.csv")


@pytest.mark.parametrize("flags, words", [
    (["--largest", "--all-faces"], "argument --all-faces: not allowed with argument --largest"),
])
def test_prepare_refuses_exclusive_flags_with_argparse(tmp_path, capsys, flags, words):
    with pytest.raises(SystemExit) as exit_info:
        main(["--photos", str(tmp_path), "--out", str(tmp_path / "set"), *flags])
    assert exit_info.value.code == 2
    assert words in capsys.readouterr().err
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("flags, message", [
    ([], "give --photos (to crop faces) or --aus (to join OpenFace AUs into --out)"),
    (["--photos", "P", "--size", "8"], "--size: 8 is less than 16 pixels"),
    (["--photos", "P", "--test-fraction", "1"], "--test-fraction: 1 is outside [0, 1)"),
    (["--photos", "P", "--margin", "1.5"], "--margin: 1.5 is outside [0, 1]"),
])
def test_prepare_flag_values_are_checked_first(tmp_path, flags, message):
    with pytest.raises(UserError) as error:
        main(["--out", str(tmp_path / "set"), *[str(tmp_path) if f == "P" else f for f in flags]])
    assert str(error.value) == message
    assert os.listdir(tmp_path) == []


# ----------------------------------------------------------------------------------------------- convert_pickle


@pytest.mark.subprocess
def test_convert_pickle_writes_the_same_aus(tmp_path):
    table = {"N_0000000021_00562": au_row(1), "N_0000000021_00563": au_row(2)}
    pkl = tmp_path / "aus_openface.pkl"
    pkl.write_bytes(py2_pickle(table))  # protocol 2, ids -> float64 arrays, as the official sample data
    refused = run_module("data.convert_pickle", pkl)
    assert_one_line_error(refused, "--allow-pickle")
    assert not (tmp_path / "aus.csv").exists()
    done = run_module("data.convert_pickle", "--allow-pickle", pkl)
    assert done.returncode == 0 and "wrote 2 ids" in done.stdout, done.stderr
    from data.aus import read_au_table
    got = read_au_table(tmp_path / "aus.csv")
    assert list(got) == list(table)
    for key in table:
        np.testing.assert_allclose(got[key], table[key], atol=1e-6)
    assert_one_line_error(run_module("data.convert_pickle", "--allow-pickle", pkl), "exists already")


@pytest.mark.subprocess
def test_convert_pickle_refuses_code_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    pkl = tmp_path / "aus_openface.pkl"
    pkl.write_bytes(pickle.dumps({"a": _Evil(marker)}, protocol=2))
    result = run_module("data.convert_pickle", "--allow-pickle", pkl, "--out", tmp_path / "out.csv")
    assert_one_line_error(result, "refused to load", "posix.system")
    assert not marker.exists() and not (tmp_path / "out.csv").exists()
