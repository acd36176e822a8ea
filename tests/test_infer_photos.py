"""infer.py on photos, in-process: faces found where they are, paste-back that leaves the rest of the photo
byte for byte, which faces, no face, input formats, targets (CSV rows, expressions, a reference face) and batch
mode. The model is an untrained tiny export: the edits are noise, which is all geometry and plumbing need."""
import os

import cv2
import numpy as np
import pytest
import skimage.data
from PIL import Image

from conftest import AU_HEADER, ROOT
from data.images import read_image
from data.synthetic import render_face

import infer
from inference import cli, expressions, outputs, photo as ph, targets as tg
from inference.edit import edit_pairs, load_model
from test_app import png_header
from utils.errors import UserError




@pytest.fixture(scope="module")
def model(export):
    return load_model(export)


@pytest.fixture(scope="module")
def astronaut():
    return np.ascontiguousarray(skimage.data.astronaut())


def scene(faces, shape=(320, 480)):
    """A smooth background with synthetic faces pasted at known places: faces = [(identity, size, x, y)]."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w]
    image = np.stack([60 + 100 * xx / w, 90 + 60 * yy / h, 150 - 50 * xx / w], axis=-1).astype(np.uint8)
    for identity, size, x, y in faces:
        image[y:y + size, x:x + size] = render_face(identity, np.zeros(17), size)
    return image


def footprint(shape, faces, pad=2):
    """Where paste-back may change pixels: each crop's square mapped into the photo, grown by `pad` pixels."""
    mask = np.zeros(shape[:2], np.uint8)
    for face in faces:
        s = face.real.shape[0]
        corners = np.array([[-0.5, -0.5], [s - 0.5, -0.5], [s - 0.5, s - 0.5], [-0.5, s - 0.5]])
        inverse = cv2.invertAffineTransform(face.M)
        points = corners @ inverse[:, :2].T + inverse[:, 2]
        cv2.fillConvexPoly(mask, np.round(points).astype(np.int32), 1)
    return cv2.dilate(mask, np.ones((2 * pad + 1, 2 * pad + 1), np.uint8)).astype(bool)


def edit_and_paste(model, photo, aus):
    out = edit_pairs(model, np.stack([f.real for f in photo.faces]), np.repeat(aus[None], len(photo.faces), 0))
    return ph.paste_back(photo, list(out["images"]))


def args(src, out, *extra):
    return ["--src", str(src), "--out", str(out), "--quiet", *map(str, extra)]


# --- faces in the wild ---

def test_synthetic_face_is_found_where_it_was_pasted_and_nothing_else_changes(model):
    image = scene([(0, 112, 250, 120)])
    photo = ph.find_faces(image, model.image_size)
    assert len(photo.faces) == 1 and photo.found == 1 and not photo.whole
    x1, y1, x2, y2 = photo.faces[0].box
    assert 250 <= x1 < x2 <= 250 + 112 and 120 <= y1 < y2 <= 120 + 112  # inside the pasted square
    out = edit_and_paste(model, photo, expressions.expression_aus("happy"))
    assert out.shape == image.shape and out.dtype == np.uint8
    inside = footprint(image.shape, photo.faces)
    np.testing.assert_array_equal(out[~inside], image[~inside])      # byte for byte outside the blend
    assert inside.sum() < 0.25 * inside.size                           # and that region is the face's
    changed = np.any(out != image, axis=-1)
    assert changed[inside].mean() > 0.5                                # the untrained model edits it


def test_two_faces_largest_first_and_choosing_faces(model):
    image = scene([(2, 128, 20, 100), (3, 80, 330, 40)], shape=(300, 480))
    both = ph.find_faces(image, model.image_size, "all")
    assert [f.number for f in both.faces] == [1, 2] and both.found == 2
    assert both.faces[0].box[0] < 150 < 330 <= both.faces[1].box[0]   # 1 = the big face on the left
    second = ph.find_faces(image, model.image_size, ph.parse_face_choice("2"))
    assert [f.number for f in second.faces] == [2] and second.faces[0].box == both.faces[1].box
    largest = ph.find_faces(image, model.image_size, ph.parse_face_choice("largest"))
    out = edit_and_paste(model, largest, expressions.expression_aus("sad"))
    np.testing.assert_array_equal(out[:, 300:], image[:, 300:])        # the small face is left alone
    assert np.any(out[:, :160] != image[:, :160])
    edited = edit_and_paste(model, both, expressions.expression_aus("sad"))
    inside = footprint(image.shape, both.faces)
    np.testing.assert_array_equal(edited[~inside], image[~inside])
    assert np.any(edited[:, 300:] != image[:, 300:])
    with pytest.raises(UserError, match="third largest face, but 2 faces were found"):
        ph.find_faces(image, model.image_size, (3,), source="two.png")
    for bad in ("0", "x", "1,1", ""):
        with pytest.raises(UserError, match="--face"):
            ph.parse_face_choice(bad)


def test_real_photo_through_infer(export, astronaut, tmp_path):
    cv2.imwrite(str(tmp_path / "astro.jpg"), astronaut[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
    src = read_image(str(tmp_path / "astro.jpg"))
    assert infer.main(args(tmp_path / "astro.jpg", tmp_path / "out", "--model", export, "--expression",
                           "happy,surprise", "--strip", "--save-crops", "--save-attention")) == 0
    names = sorted(os.listdir(tmp_path / "out"))
    assert names == sorted(["astro_face1.png"] + [f"astro_{e}{s}.png" for e in ("happy", "surprise")
                                                  for s in ("", "_attention", "_strip", "_face1")])
    out = read_image(str(tmp_path / "out" / "astro_happy.png"))
    assert out.shape == src.shape
    photo = ph.find_faces(src, 32)
    inside = footprint(src.shape, photo.faces)
    np.testing.assert_array_equal(out[~inside], src[~inside])
    x1, y1, x2, y2 = map(int, photo.faces[0].box)
    assert 175 <= x1 and x2 <= 270 and 55 <= y1 and y2 <= 180  # the astronaut's face
    attention = cv2.imread(str(tmp_path / "out" / "astro_happy_attention.png"), cv2.IMREAD_UNCHANGED)
    assert attention.shape == src.shape[:2] and (attention[~inside] == 255).all()
    assert read_image(str(tmp_path / "out" / "astro_happy_strip.png")).shape == (32, 4 * 32, 3)
    np.testing.assert_array_equal(read_image(str(tmp_path / "out" / "astro_face1.png")), photo.faces[0].real)


def test_no_face(export, tmp_path):
    coffee = tmp_path / "coffee.png"
    cv2.imwrite(str(coffee), skimage.data.coffee()[:, :, ::-1])
    with pytest.raises(UserError, match="no face found in this 600 x 400 image.*--no-detect") as e:
        infer.main(args(coffee, tmp_path / "out", "--model", export, "--expression", "happy"))
    assert e.value.path == str(coffee)
    assert not (tmp_path / "out").exists()
    assert infer.main(args(coffee, tmp_path / "out", "--model", export, "--expression", "happy",
                           "--no-detect")) == 0
    assert read_image(str(tmp_path / "out" / "coffee_happy.png")).shape == (32, 32, 3)  # the edited crop


def test_small_image_without_a_face_is_a_crop(model):
    small = np.full((50, 40, 3), 120, np.uint8)
    photo = ph.find_faces(small, model.image_size)
    assert photo.whole and photo.found == 0 and "small image" in photo.note
    assert photo.faces[0].real.shape == (32, 32, 3)
    assert ph.paste_back(photo, [np.zeros((32, 32, 3), np.uint8)]).shape == (32, 32, 3)
    with pytest.raises(UserError, match="no face found in this 40 x 50 image"):
        ph.find_faces(small, model.image_size, detect=True, source="small.png")  # --detect: no fallback


def test_an_image_of_the_model_size_is_an_aligned_crop(model, monkeypatch):
    import data.faces
    crop = render_face(4, np.zeros(17), model.image_size)
    monkeypatch.setattr(data.faces, "detect_faces", lambda *a, **k: pytest.fail("searched an aligned crop"))
    photo = ph.find_faces(crop, model.image_size)
    assert photo.whole and photo.note == ""
    np.testing.assert_array_equal(photo.faces[0].real, crop)  # as it is: no resampling
    monkeypatch.setattr(data.faces, "detect_faces", lambda *a, **k: [])
    with pytest.raises(UserError, match="no face found"):
        ph.find_faces(crop, model.image_size, detect=True)


def test_exif_gray_rgba_and_16_bit_photos(astronaut, tmp_path):
    upright = ph.find_faces(astronaut, 32).faces[0]
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display": store the pixels turned the other way
    Image.fromarray(np.ascontiguousarray(np.rot90(astronaut, 1))).save(tmp_path / "exif.jpg",
                                                                       exif=exif.tobytes(), quality=95)
    cv2.imwrite(str(tmp_path / "gray.png"), cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY))
    Image.fromarray(np.dstack([astronaut, np.full(astronaut.shape[:2], 90, np.uint8)])).save(tmp_path / "rgba.png")
    cv2.imwrite(str(tmp_path / "deep.png"), astronaut[:, :, ::-1].astype(np.uint16) * 257)
    for name in ("exif.jpg", "gray.png", "rgba.png", "deep.png"):
        photo = cli.prepare(str(tmp_path / name), 32, outputs.Options())
        assert photo.image.shape == (512, 512, 3) and photo.image.dtype == np.uint8, name
        assert len(photo.faces) == 1, name
        np.testing.assert_allclose(photo.faces[0].box, upright.box, atol=6, err_msg=name)


# --- targets ---

def test_expression_table_is_examples_csv():
    with open(os.path.join(ROOT, "examples", "expressions.csv")) as f:
        assert f.read() == expressions.expressions_csv()
    happy = expressions.expression_aus("happy", 1.75)
    assert happy[8] == pytest.approx(2.0) and happy[4] == pytest.approx(1.75)  # AU12 4.0 and AU06 3.5, halved
    assert expressions.expression_aus("happy", 5.0).max() == 5.0               # clipped at 5
    assert not expressions.expression_aus("surprise", 0.0).any()
    assert expressions.parse_expressions("all") == list(expressions.EXPRESSIONS)
    t = tg.expression_targets("sad,happy", 3.5)
    assert t.labels == ["sad", "happy"] and t.aus.shape == (2, 17)
    with pytest.raises(UserError, match="unknown expression 'joy'"):
        expressions.parse_expressions("happy,joy")
    with pytest.raises(UserError, match="--intensity"):
        expressions.expression_aus("happy", 6)


def test_reference_face_gives_the_targets(export, model, astronaut, tmp_path):
    reference = ph.find_faces(astronaut, model.image_size, (1,))
    t = tg.reference_targets(model, reference, "refs/astro.png")
    expected = np.clip(model.estimate_aus(reference.faces[0].real[None]), 0, 5)
    np.testing.assert_allclose(t.aus, expected, rtol=1e-6)
    assert t.labels == ["ref_astro"] and (t.aus >= 0).all() and (t.aus <= 5).all()
    src = tmp_path / "face.png"
    cv2.imwrite(str(src), scene([(5, 112, 250, 120)])[:, :, ::-1])
    cv2.imwrite(str(tmp_path / "astro.png"), astronaut[:, :, ::-1])
    assert infer.main(args(src, tmp_path / "out", "--model", export, "--ref", tmp_path / "astro.png")) == 0
    assert os.listdir(tmp_path / "out") == ["face_ref_astro.png"]
    cv2.imwrite(str(tmp_path / "coffee.png"), skimage.data.coffee()[:, :, ::-1])
    with pytest.raises(UserError, match="coffee.png: no face found"):
        infer.main(args(src, tmp_path / "out2", "--model", export, "--ref", tmp_path / "coffee.png"))


def test_au_csv_rows_and_source_aus(export, tmp_path):
    src = tmp_path / "two.png"
    cv2.imwrite(str(src), scene([(2, 128, 20, 100), (3, 80, 330, 40)], shape=(300, 480))[:, :, ::-1])
    (tmp_path / "aus.csv").write_text("name," + AU_HEADER + "\nsmile," + ",".join(["0"] * 8 + ["4"] + ["0"] * 8)
                                      + "\nopen," + ",".join(["0"] * 15 + ["3", "0"]) + "\n")
    assert infer.main(args(src, tmp_path / "out", "--model", export, "--aus", tmp_path / "aus.csv")) == 0
    assert sorted(os.listdir(tmp_path / "out")) == ["two_open.png", "two_smile.png"]
    rows = np.zeros((3, 17), np.float32)
    with pytest.raises(UserError, match="3 rows of source AUs for 2 faces"):
        tg.source_aus_for(rows, 2, "src.csv")
    assert tg.source_aus_for(rows[:1], 2, "src.csv").shape == (2, 17)


# --- batch mode ---

def test_folder_one_model_load_batches_across_photos_and_a_summary(export, astronaut, tmp_path, monkeypatch,
                                                                    capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    cv2.imwrite(str(folder / "astro.jpg"), astronaut[:, :, ::-1])
    cv2.imwrite(str(folder / "astro.png"), astronaut[:, :, ::-1])  # same stem: outputs astro_jpg_*, astro_png_*
    cv2.imwrite(str(folder / "two.png"), scene([(2, 128, 20, 100), (3, 80, 330, 40)], shape=(300, 480))[:, :, ::-1])
    cv2.imwrite(str(folder / "coffee.png"), skimage.data.coffee()[:, :, ::-1])
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    (folder / "bomb.png").write_bytes(png_header(60000, 60000))  # an image bomb: skipped unread
    (folder / "notes.txt").write_text("not an image")
    loads, batches = [], []
    from models.export import LoadedModel
    original_edit = LoadedModel.edit

    def counting_edit(self, images, aus):
        batches.append(len(images))
        return original_edit(self, images, aus)

    monkeypatch.setattr(LoadedModel, "edit", counting_edit)
    import inference.edit
    real_load = inference.edit.load_model
    monkeypatch.setattr(inference.edit, "load_model", lambda path: loads.append(path) or real_load(path))
    assert infer.main(args(folder, tmp_path / "out", "--model", export, "--expression", "happy",
                           "--batch-size", "8")) == 0
    assert len(loads) == 1
    assert batches == [4]  # 4 faces from 3 photos in one model call
    assert sorted(os.listdir(tmp_path / "out")) == ["astro_jpg_happy.png", "astro_png_happy.png", "two_happy.png"]
    summary = capsys.readouterr().out
    assert "edited 4 faces in 3 of 6 images in " in summary and " s: 3 files in " in summary
    assert "broken.jpg: is not a readable image" in summary and "coffee.png: no face found" in summary
    assert "bomb.png: is too large an image (60000 x 60000 pixels, more than the limit of 50 megapixels)" in summary
    assert "--no-detect" not in summary


def test_folder_where_nothing_can_be_edited(export, tmp_path):
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "broken.png").write_bytes(b"nope")
    with pytest.raises(UserError, match="none of its 1 images could be edited"):
        infer.main(args(tmp_path / "photos", tmp_path / "out", "--model", export, "--expression", "happy"))
    assert not (tmp_path / "out").exists()
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no images in this folder"):
        infer.main(args(tmp_path / "empty", tmp_path / "out", "--model", export, "--expression", "happy"))


# --- many targets: files written batch by batch, and a limit on their number ---

def test_a_long_au_csv_is_written_batch_by_batch(export, tmp_path, monkeypatch):
    """40 targets at --batch-size 4: ten model calls, and each call's 4 files are written before the next call,
    so memory holds one batch (not 40 edits) and the first file comes after the first call."""
    src = tmp_path / "face.png"
    cv2.imwrite(str(src), render_face(1, np.zeros(17), 32)[:, :, ::-1])  # the model's size: an aligned crop
    rows = np.random.default_rng(0).uniform(0, 5, (40, 17))
    (tmp_path / "aus.csv").write_text(AU_HEADER + "\n" + "\n".join(",".join(f"{v:.2f}" for v in r) for r in rows))
    events = []
    from models.export import LoadedModel
    original_edit = LoadedModel.edit
    monkeypatch.setattr(LoadedModel, "edit", lambda self, images, aus: events.append(("edit", len(images)))
                        or original_edit(self, images, aus))
    original_write = outputs.write_file
    monkeypatch.setattr(outputs, "write_file", lambda path, *a: events.append(("write", os.path.basename(path)))
                        or original_write(path, *a))
    assert infer.main(args(src, tmp_path / "out", "--model", export, "--aus", tmp_path / "aus.csv",
                           "--batch-size", "4")) == 0
    assert events == [e for k in range(10) for e in
                      [("edit", 4)] + [("write", f"face_{i:03d}.png") for i in range(4 * k, 4 * k + 4)]]
    assert len(os.listdir(tmp_path / "out")) == 40


def test_more_outputs_than_the_limit_are_refused_before_the_model_loads(export, tmp_path, monkeypatch):
    src = tmp_path / "face.png"
    cv2.imwrite(str(src), np.full((40, 40, 3), 100, np.uint8))
    (tmp_path / "aus.csv").write_text(AU_HEADER + "\n" + "\n".join([",".join(["1"] * 17)] * 600) + "\n")
    import inference.edit
    monkeypatch.setattr(inference.edit, "load_model", lambda path: pytest.fail("the model was loaded"))
    with pytest.raises(UserError, match=r"^--max-outputs: this would write 1,200 files \(600 targets x 1 image\) "
                                        r".*limit of 1,000; pass --max-outputs 1200"):
        infer.main(args(src, tmp_path / "out", "--model", export, "--aus", tmp_path / "aus.csv",
                        "--save-attention"))
    with pytest.raises(UserError, match=r"would write 600 files .*limit of 500"):
        infer.main(args(src, tmp_path / "out", "--model", export, "--aus", tmp_path / "aus.csv",
                        "--max-outputs", "500"))
    assert not (tmp_path / "out").exists()
    folder = tmp_path / "photos"
    folder.mkdir()
    for k in range(3):
        cv2.imwrite(str(folder / f"p{k}.png"), np.full((40, 40, 3), 100, np.uint8))
    with pytest.raises(UserError, match=r"at least 51 files \(8 targets x 3 images\)"):  # + a crop per face
        infer.main(args(folder, tmp_path / "out", "--model", export, "--expression", "all", "--save-crops",
                        "--max-outputs", "10"))


# --- bad input: a UserError naming the flag or file, nothing written ---

@pytest.mark.parametrize("extra, words", [
    ([], "one of the arguments --aus --expression --ref --driver is required"),
    (["--expression", "happy", "--ref", "x.png"], "argument --ref: not allowed with argument --expression"),
    (["--aus", "a.csv", "--expression", "happy"], "argument --expression: not allowed with argument --aus"),
    (["--driver", "v.mp4", "--expression", "happy"], "argument --expression: not allowed with argument --driver"),
    (["--driver", "v.mp4", "--aus", "a.csv"], "argument --aus: not allowed with argument --driver"),
    (["--aus", "a.csv", "--no-detect", "--detect"], "argument --detect: not allowed with argument --no-detect"),
])
def test_flags_argparse_refuses_together(capsys, extra, words):
    """Targets are one mutually exclusive group (required), --detect / --no-detect another: argparse's own
    message names both flags, exit code 2, before anything is read."""
    with pytest.raises(SystemExit) as exit_info:
        infer.main(["--src", "face.png", "--quiet", *extra])
    assert exit_info.value.code == 2
    assert words in capsys.readouterr().err


def test_help_has_sections_and_defaults(capsys):
    with pytest.raises(SystemExit) as exit_info:
        infer.main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    sections = ["inputs:", "target expression (exactly one of --aus, --expression, --ref, --driver):", "faces:",
                "model:", "outputs:", "animation (of a still target; not with --driver):"]
    assert [text.index(s) for s in sections] == sorted(text.index(s) for s in sections)
    flat = " ".join(text.split())
    for words in ["--intensity X strength of --expression on the 0-5 scale (default: 3.5)",
                  "--fps X frame rate of --animate (default: 12.0)", "--out DIR output folder (default: out)",
                  "--max-outputs N", "(default: 1000)", "--batch-size N crops per model call (default: 16)"]:
        assert words in flat
    assert "(default: None)" not in flat and "(default: False)" not in flat


@pytest.mark.parametrize("extra, words", [
    (["--expression", "joy"], "unknown expression 'joy'"),
    (["--expression", "happy", "--intensity", "7"], "--intensity: 7 is outside"),
    (["--expression", "happy", "--face", "first"], "--face"),
    (["--expression", "happy", "--animate", "1"], "--animate: needs at least 2 frames"),
    (["--expression", "happy", "--pingpong"], "--pingpong: goes with --animate"),
    (["--expression", "happy", "--margin", "2"], "--margin"),
    (["--driver", "v.mp4", "--animate", "4"], "--driver: writes a video at the driver's frame rate; --animate is"),
    (["--driver", "v.mp4", "--strip"], "--driver: writes a video at the driver's frame rate; --strip is"),
    (["--expression", "happy", "--driver-aus", "a.csv"], "--driver-aus: goes with --driver"),
    (["--expression", "happy", "--fps", "0"], "--fps: 0 is not a frame rate"),
    (["--expression", "happy", "--batch-size", "0"], "--batch-size: must be at least 1"),
    (["--driver", "nowhere.mp4"], "nowhere.mp4: does not exist"),
    (["--driver", "BAD"], "is not a readable video"),
    (["--ref", "nowhere.png"], "nowhere.png: does not exist"),
    (["--expression", "happy", "--src-aus", "BADCSV"], "AU"),
])
def test_bad_flags_and_files(export, tmp_path, extra, words):
    src = tmp_path / "face.png"
    cv2.imwrite(str(src), np.full((40, 40, 3), 100, np.uint8))
    (tmp_path / "bad.mp4").write_bytes(b"\x00" * 100)
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    extra = [str(tmp_path / "bad.mp4") if e == "BAD" else str(tmp_path / "bad.csv") if e == "BADCSV"
             else str(tmp_path / e) if e.endswith((".png", ".mp4")) else e for e in extra]
    with pytest.raises(UserError, match=words.replace("(", r"\(")):
        infer.main(args(src, tmp_path / "out", "--model", export, *extra))
    assert not (tmp_path / "out").exists()
