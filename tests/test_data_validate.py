"""data/dataset.py and its command data/validate.py: image checks from the bytes, the data-set check with its
summary, --strict, the command."""
import io
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from conftest import ROOT
from data.dataset import (CORRUPT, EMPTY, MISSING, NOT_AN_IMAGE, SAME_BYTES, TOO_LARGE, check_image, check_images,
                          load_dataset)
from data.faceset import FaceSet
from data.images import image_size_from_header
from data.problems import Problems, write_problems_csv
from test_app import png_header
from test_readers import au_row, plain_csv, write_text
from utils.errors import UserError

RNG = np.random.default_rng(0)


def photo(h=40, w=30, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def jpeg_bytes(image, **params):
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_PROGRESSIVE, int(params.get("progressive", 0))])
    return buf.tobytes()


@pytest.mark.parametrize("name, write", [
    ("a.jpg", lambda p: cv2.imwrite(p, photo())),
    ("progressive.jpg", lambda p: open(p, "wb").write(jpeg_bytes(photo(), progressive=1))),
    ("gray.png", lambda p: cv2.imwrite(p, photo()[..., 0])),
    ("rgba.png", lambda p: cv2.imwrite(p, np.dstack([photo(), photo()[..., 0]]))),
    ("deep.png", lambda p: cv2.imwrite(p, photo().astype(np.uint16) * 257)),
    ("a.bmp", lambda p: cv2.imwrite(p, photo())),
    ("png_named.jpg", lambda p: open(p, "wb").write(cv2.imencode(".png", photo())[1].tobytes())),
])
def test_good_images_pass_with_their_size(tmp_path, name, write):
    path = str(tmp_path / name)
    write(path)
    check = check_image(path)
    assert check.problem is None and (check.width, check.height) == (30, 40) and len(check.digest) == 16


def test_bad_images_are_named(tmp_path):
    good = jpeg_bytes(photo(64, 64))
    garbled = bytearray(good)
    garbled[4:40] = b"\x00" * 36                  # header destroyed after the start-of-image marker
    cases = {"empty.jpg": (b"", EMPTY),
             "text.jpg": (b"hello, I am not a picture\n", NOT_AN_IMAGE),
             "truncated.jpg": (good[:len(good) // 2], CORRUPT),
             "garbled.jpg": (bytes(garbled), CORRUPT),
             "header_only.png": (b"\x89PNG\r\n\x1a\n", CORRUPT)}
    for name, (data, problem) in cases.items():
        (tmp_path / name).write_bytes(data)
        assert check_image(str(tmp_path / name)).problem == problem, name
    assert check_image(str(tmp_path / "gone.jpg")).problem == MISSING
    assert (tmp_path / "folder.jpg").mkdir() or check_image(str(tmp_path / "folder.jpg")).problem.startswith(
        "image file cannot be read")


def test_header_size_without_decoding():
    image = photo(37, 53)
    for ext in (".jpg", ".png", ".bmp"):
        assert image_size_from_header(cv2.imencode(ext, image)[1]) == (53, 37), ext
    assert image_size_from_header(b"\xff\xd8\xff") is None


def test_check_images_keeps_order_across_threads(tmp_path):
    paths = []
    for k in range(600):  # more than two thread chunks
        path = tmp_path / f"{k}.png"
        if k % 7 == 3:
            path.write_bytes(b"junk")
        else:
            cv2.imwrite(str(path), np.full((8 + k % 5, 8, 3), k % 256, np.uint8))
        paths.append(str(path))
    checks = check_images(paths, workers=4)
    assert [c.problem is None for c in checks] == [k % 7 != 3 for k in range(600)]
    assert [c.height for c in checks if c.problem is None] == [8 + k % 5 for k in range(600) if k % 7 != 3]


# ----------------------------------------------------------------------------------------------- a data set


def messy_official(tmp_path):
    """An official-layout folder with one sample of every problem, and 4 good ones (g0..g3)."""
    root = tmp_path / "set"
    (root / "imgs").mkdir(parents=True)
    table = {}
    for k in range(4):
        cv2.imwrite(str(root / "imgs" / f"g{k}.jpg"), photo(32, 32, seed=k))
        table[f"g{k}"] = au_row(k)
    cv2.imwrite(str(root / "imgs" / "big.jpg"), photo(48, 40, seed=9))          # wrong size: kept, warned
    table["big"] = au_row(9)
    (root / "imgs" / "copy.jpg").write_bytes((root / "imgs" / "g0.jpg").read_bytes())  # same bytes as g0
    table["copy"] = au_row(10)
    (root / "imgs" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    table["broken"] = au_row(11)
    for name, value in (("nan", np.nan), ("neg", -3.0), ("high", 7.5)):
        cv2.imwrite(str(root / "imgs" / f"{name}.jpg"), photo(32, 32, seed=20 + len(name)))
        row = au_row(12).copy()
        row[4] = value
        table[name] = row
    cv2.imwrite(str(root / "imgs" / "noaus.jpg"), photo(32, 32, seed=30))
    table["noimage"] = au_row(13)
    ids = list(table)
    text = "id," + ",".join(f"AU{n}" for n in "01 02 04 05 06 07 09 10 12 14 15 17 20 23 25 26 45".split()) + "\n"
    text += "".join(f"{i}," + ",".join("nan" if np.isnan(v) else f"{v:g}" for v in table[i]) + "\n" for i in ids)
    text += "g1," + ",".join(["1"] * 17) + "\n"                                 # duplicate id: first row wins
    write_text(root / "aus.csv", text)
    write_text(root / "train_ids.csv", "".join(f"{i}.jpg\n" for i in ids + ["noaus", "g2"]))  # g2 twice
    write_text(root / "test_ids.csv", "g3.jpg\n")                                # g3 in both splits
    return root, table


def test_load_dataset_skips_each_problem_and_reports_it(tmp_path):
    root, table = messy_official(tmp_path)
    out = io.StringIO()
    problems = Problems()
    source = load_dataset(root, image_size=32, stream=out, problems=problems)
    assert source.ids == ["g0", "g1", "g2", "g3", "big"]
    np.testing.assert_allclose(source.aus[1], table["g1"], atol=1e-6)  # not the duplicate row of ones
    skipped = {reason: names for reason, names in problems.skipped.items()}
    assert skipped["AU value is NaN or infinite in aus.csv"] == ["nan"]
    assert skipped["AU value is negative in aus.csv"] == ["neg"]
    assert skipped["AU value is above 5 in aus.csv"] == ["high"]
    assert skipped["duplicate id in aus.csv (its first row is used)"] == ["g1"]
    assert skipped["no image in imgs/"] == ["noimage"]
    assert skipped["no AUs in aus.csv"] == ["noaus"]
    assert [n.split("/")[-1] for n in skipped[CORRUPT]] == ["broken.jpg"]
    assert skipped[SAME_BYTES][0].endswith("copy.jpg (= " + str(root / "imgs" / "g0.jpg") + ")")
    warnings = problems.warnings
    assert warnings["image is not 32 x 32 (resized when read)"] == [str(root / "imgs" / "big.jpg") + " (40 x 48)"]
    assert warnings["duplicate id in train_ids.csv (used once)"] == ["g2"]
    assert warnings["also in test_ids.csv"] == ["g3"]
    summary = out.getvalue()
    assert "5 usable samples, 8 left out, 3 warnings" in summary and "images checked in" in summary
    assert len(summary.strip().splitlines()) == 1 + 8 + 3  # the headline, then one line per reason


def test_strict_refuses_any_problem_and_nothing_usable_is_an_error(tmp_path):
    root, _ = messy_official(tmp_path)
    with pytest.raises(UserError, match="stopped by --strict: .*1 image is not 32 x 32"):
        load_dataset(root, image_size=32, strict=True, stream=io.StringIO())
    clean = tmp_path / "clean"
    (clean / "imgs").mkdir(parents=True)
    cv2.imwrite(str(clean / "imgs" / "a.jpg"), photo(32, 32))
    plain_csv(clean / "aus.csv", [au_row(1)], ids=["a"])
    write_text(clean / "train_ids.csv", "a.jpg\n")
    assert load_dataset(clean, image_size=32, strict=True, stream=io.StringIO()).ids == ["a"]
    (clean / "imgs" / "a.jpg").write_bytes(b"\xff\xd8\xffjunk")
    out = io.StringIO()
    with pytest.raises(UserError, match="no usable samples"):
        load_dataset(clean, stream=out)
    assert CORRUPT in out.getvalue()


def test_manifest_split_column_duplicates_and_bad_rows(tmp_path):
    for name in ("a", "b", "c", "d"):
        cv2.imwrite(str(tmp_path / f"{name}.png"), photo(16, 16, seed=ord(name)))
    rows = [au_row(1), au_row(2), au_row(3), au_row(4), au_row(5)]
    rows[3] = np.full(17, np.nan)
    text = "path,split," + ",".join(f"AU{n}" for n in "01 02 04 05 06 07 09 10 12 14 15 17 20 23 25 26 45".split())
    lines = [f"{p},{s}," + ",".join(f"{v:g}" for v in r)
             for p, s, r in zip(["a.png", "b.png", "a.png", "d.png", "c.png"], ["train", "train", "train", "train",
                                                                                "test"], rows)]
    write_text(tmp_path / "manifest.csv", "\n".join([text] + lines) + "\n")
    problems = Problems()
    train = load_dataset(tmp_path, split="train", stream=io.StringIO(), problems=problems)
    assert train.ids == ["a", "b"]
    assert problems.skipped == {"image listed again (its first row is used)": ["a"],
                                "AU value is NaN or infinite in manifest.csv": ["d"]}
    assert load_dataset(tmp_path, split="test", stream=io.StringIO()).ids == ["c"]
    with pytest.raises(UserError, match="no rows of split 'val'.*test, train"):
        load_dataset(tmp_path, split="val", stream=io.StringIO())


def test_in_memory_sources_need_no_image_check():
    from data.dataset import check_source
    source = FaceSet(aus=np.zeros((2, 17)), ids=["a", "b"], images=np.zeros((2, 8, 8, 3), np.uint8))
    problems = Problems()
    assert check_source(source, problems, image_size=16) is source and not problems


def test_problems_csv_lists_everything(tmp_path):
    problems = Problems()
    problems.skip("bad, with a comma", ["x.jpg", "y.jpg"])
    problems.warn("odd", "z.jpg")
    write_problems_csv(tmp_path / "p.csv", problems)
    assert (tmp_path / "p.csv").read_text().splitlines() == [
        "kind,reason,sample", 'skipped,"bad, with a comma",x.jpg', 'skipped,"bad, with a comma",y.jpg',
        "warning,odd,z.jpg"]


@pytest.mark.subprocess
def test_validate_command(tmp_path):
    root, _ = messy_official(tmp_path)

    def run(*args):
        return subprocess.run([sys.executable, "-m", "data.validate", *map(str, args)], cwd=ROOT,
                              env=dict(os.environ, PYTHONPATH=ROOT), capture_output=True, text=True, timeout=120)

    ok = run(root, "--image-size", "32", "--report", tmp_path / "report.csv")
    assert ok.returncode == 0 and ok.stderr == "", ok.stderr
    assert "5 usable samples, 8 left out, 3 warnings" in ok.stdout
    assert len((tmp_path / "report.csv").read_text().splitlines()) == 1 + 8 + 3
    strict = run(root, "--image-size", "32", "--strict")
    assert strict.returncode == 2 and strict.stderr.count("\n") == 1
    assert strict.stderr.startswith(f"error: {root}: stopped by --strict:")
    missing = run(tmp_path / "nothing")
    assert missing.returncode == 2 and missing.stderr == f"error: {tmp_path / 'nothing'}: does not exist\n"


def bomb_manifest(folder):
    """A manifest data set (what train.py --data reads): a.png, a PNG whose header says 60000 x 60000 pixels
    (an image bomb, 10 GB decoded) and b.png cut short (libpng complains on stderr when it decodes it)."""
    folder.mkdir(exist_ok=True)
    cv2.imwrite(str(folder / "a.png"), photo(16, 16))
    (folder / "bomb.png").write_bytes(png_header(60000, 60000))
    good = cv2.imencode(".png", photo(16, 16, seed=1))[1].tobytes()
    (folder / "b.png").write_bytes(good[:len(good) // 2])
    header = "path," + ",".join(f"AU{n}" for n in "01 02 04 05 06 07 09 10 12 14 15 17 20 23 25 26 45".split())
    write_text(folder / "manifest.csv", "\n".join([header] + [f"{name}," + ",".join(["1"] * 17)
                                                             for name in ("a.png", "bomb.png", "b.png")]) + "\n")
    return folder


def test_an_image_bomb_is_left_out_without_decoding(tmp_path):
    root = bomb_manifest(tmp_path / "set")
    assert check_image(str(root / "bomb.png")).problem == TOO_LARGE
    problems = Problems()
    source = load_dataset(root, stream=io.StringIO(), problems=problems)  # train.py --data calls this
    assert source.ids == ["a"]
    assert problems.skipped == {TOO_LARGE: [str(root / "bomb.png")], CORRUPT: [str(root / "b.png")]}


@pytest.mark.subprocess
def test_validate_command_with_an_image_bomb_and_a_truncated_png(tmp_path):
    """The bomb is left out with its reason, and no libpng message reaches the terminal: the summary says it."""
    root = bomb_manifest(tmp_path / "set")
    result = subprocess.run([sys.executable, "-m", "data.validate", str(root)], cwd=ROOT,
                            env=dict(os.environ, PYTHONPATH=ROOT), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert "1 usable samples, 2 left out" in result.stdout and TOO_LARGE in result.stdout
