"""infer.py's animations (--animate, --pingpong) and video reenactment (--driver), in-process: the AUs each
frame is edited to, the GIF and MP4 files (frame count, rate, size), atomic writing, and frames without a face."""
import os

import cv2
import numpy as np
import pytest
import skimage.data
from PIL import Image

from conftest import AU_HEADER
from data.synthetic import render_face

import infer
from inference import animate
from inference.expressions import expression_aus
from inference.video import fill_missing
from utils.errors import UserError

OPENFACE = ["AU01_r", "AU02_r", "AU04_r", "AU05_r", "AU06_r", "AU07_r", "AU09_r", "AU10_r", "AU12_r", "AU14_r",
            "AU15_r", "AU17_r", "AU20_r", "AU23_r", "AU25_r", "AU26_r", "AU45_r"]



@pytest.fixture
def recorded(monkeypatch):
    """Every AU row the model is asked to edit to, in order."""
    from models.export import LoadedModel
    rows, original = [], LoadedModel.edit

    def edit(self, images, aus):
        rows.extend(np.asarray(aus, np.float32))
        return original(self, images, aus)

    monkeypatch.setattr(LoadedModel, "edit", edit)
    return rows


@pytest.fixture(scope="module")
def photo_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("src") / "astro.png"
    cv2.imwrite(str(path), skimage.data.astronaut()[:, :, ::-1])
    return path


def args(src, out, *extra):
    return ["--src", str(src), "--out", str(out), "--quiet", *map(str, extra)]


def video_info(path):
    capture = cv2.VideoCapture(str(path))
    frames = 0
    while capture.read()[0]:
        frames += 1
    info = capture.get(cv2.CAP_PROP_FPS), frames, int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), \
        int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    capture.release()
    return info


def test_weights_and_interpolation_closed_form():
    np.testing.assert_allclose(animate.frame_weights(4), [0, 1 / 3, 2 / 3, 1], rtol=1e-6)
    np.testing.assert_allclose(animate.frame_weights(4, pingpong=True), [0, 1 / 3, 2 / 3, 1, 2 / 3, 1 / 3],
                               rtol=1e-6)
    y_src, y_tgt = np.zeros(17, np.float32), np.full(17, 3.0, np.float32)
    np.testing.assert_allclose(animate.interpolate(y_src, y_tgt, [0, 0.5, 1])[:, 0], [0, 1.5, 3])
    two = animate.interpolate(np.stack([y_src, y_tgt]), y_tgt, [0.5])  # per-face sources: (K, F, 17)
    assert two.shape == (1, 2, 17) and two[0, 0, 0] == 1.5 and two[0, 1, 0] == 3.0
    with pytest.raises(UserError, match="at least 2"):
        animate.frame_weights(1)


@pytest.mark.slow
def test_animation_gif_and_mp4_from_the_source_aus(export, photo_path, tmp_path, recorded):
    src_aus = np.linspace(0, 2, 17)
    (tmp_path / "src.csv").write_text(AU_HEADER + "\n" + ",".join(f"{v:.3f}" for v in src_aus) + "\n")
    assert infer.main(args(photo_path, tmp_path / "out", "--model", export, "--expression", "surprise",
                           "--animate", 4, "--pingpong", "--fps", 8, "--src-aus", tmp_path / "src.csv",
                           "--save-crops")) == 0
    assert sorted(os.listdir(tmp_path / "out")) == ["astro_face1.png", "astro_surprise.gif", "astro_surprise.mp4",
                                                    "astro_surprise_face1.png"]
    y_src = np.float32(np.round(src_aus, 3))
    expected = animate.interpolate(y_src, expression_aus("surprise"), [0, 1 / 3, 2 / 3, 1, 2 / 3, 1 / 3])
    np.testing.assert_allclose(np.stack(recorded), expected, atol=1e-6)  # 6 frames, one face
    gif = Image.open(tmp_path / "out" / "astro_surprise.gif")
    assert gif.n_frames == 6 and gif.size == (512, 512) and gif.info["loop"] == 0
    assert abs(gif.info["duration"] - 125) <= 10  # GIF stores hundredths of a second
    assert video_info(tmp_path / "out" / "astro_surprise.mp4") == (8.0, 6, 512, 512)


def test_animation_estimates_the_source_aus_with_the_au_head(export, photo_path, tmp_path, recorded):
    from inference.edit import load_model
    from inference.photo import find_faces
    from data.images import read_image
    model = load_model(export)
    crop = find_faces(read_image(str(photo_path)), 32).faces[0].real
    y_src = np.clip(model.estimate_aus(crop[None])[0], 0, 5)
    assert infer.main(args(photo_path, tmp_path / "out", "--model", export, "--expression", "happy",
                           "--animate", 3)) == 0
    np.testing.assert_allclose(recorded[0], y_src, atol=1e-5)               # frame 0: the source's own AUs
    np.testing.assert_allclose(recorded[-1], expression_aus("happy"), atol=1e-6)


def test_odd_sizes_and_atomic_video_files(tmp_path):
    frames = [np.full((31, 33, 3), 40 * k, np.uint8) for k in range(3)]
    animate.write_mp4(str(tmp_path / "odd.mp4"), frames, fps=5)
    assert video_info(tmp_path / "odd.mp4") == (5.0, 3, 34, 32)  # the last row and column repeated
    with pytest.raises(RuntimeError):
        with animate.Mp4Writer(str(tmp_path / "broken.mp4"), fps=5) as video:
            video.write(frames[0])
            raise RuntimeError("killed half way")
    assert sorted(os.listdir(tmp_path)) == ["odd.mp4"]  # no half-written video, no temporary file
    assert animate.fit_side(np.zeros((2000, 1000, 3), np.uint8), 1280).shape == (1280, 640, 3)


def test_fill_missing_reuses_the_last_aus():
    start = np.zeros((2, 17), np.float32)  # two source faces
    a, b = np.full(17, 1.0, np.float32), np.full(17, 2.0, np.float32)
    rows, last = fill_missing([None, a, None, None, b, None], start)
    assert [float(r[1, 0]) for r in rows] == [0, 1, 1, 1, 2, 2] and all(r.shape == (2, 17) for r in rows)
    rows, _ = fill_missing([None], last)  # carried over to the next chunk of frames
    assert float(rows[0][0, 0]) == 2


def driver_video(path, faces_at, n=12, fps=10):
    """A 160 x 160 driver: a synthetic face smiling more and more in the frames listed, none elsewhere."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (160, 160))
    for k in range(n):
        frame = np.full((160, 160, 3), 90, np.uint8)
        if k in faces_at:
            aus = np.zeros(17)
            aus[8] = k / 3  # AU12
            frame[16:144, 16:144] = render_face(0, aus, 128)
        writer.write(frame[:, :, ::-1])
    writer.release()


def test_driver_video_au_head(export, photo_path, tmp_path, recorded, capsys):
    driver_video(tmp_path / "drive.mp4", faces_at=[1, 2, 3, 4, 7, 8, 9, 10, 11])
    (tmp_path / "src.csv").write_text(AU_HEADER + "\n" + ",".join(["0.5"] * 17) + "\n")
    assert infer.main(args(photo_path, tmp_path / "out", "--model", export, "--driver", tmp_path / "drive.mp4",
                           "--src-aus", tmp_path / "src.csv")) == 0
    assert os.listdir(tmp_path / "out") == ["astro_drive.mp4"]
    assert video_info(tmp_path / "out" / "astro_drive.mp4") == (10.0, 12, 512, 512)
    rows = np.stack(recorded)
    assert rows.shape == (12, 17)
    np.testing.assert_allclose(rows[0], 0.5)                   # no face yet: the source's own AUs
    np.testing.assert_array_equal(rows[5], rows[4])            # frames 5 and 6 have no face: frame 4's AUs
    np.testing.assert_array_equal(rows[6], rows[4])
    assert not np.array_equal(rows[7], rows[4])
    assert "12 frames at 10 fps; 3 without a driver face" in capsys.readouterr().err


def test_driver_with_an_openface_csv(export, photo_path, tmp_path, recorded):
    driver_video(tmp_path / "drive.mp4", faces_at=[], n=5, fps=25)  # the CSV says what the faces do
    lines = ["frame, face_id, timestamp, confidence, success, " + ", ".join(OPENFACE)]
    for frame, success, value in [(1, 1, 1.0), (2, 0, 0.0), (3, 1, 3.0), (4, 1, 4.0)]:  # frame 5: no row
        lines.append(f"{frame}, 0, {frame / 25:.2f}, 0.9, {success}, " + ", ".join([f"{value}"] * 17))
    (tmp_path / "of.csv").write_text("\n".join(lines) + "\n")
    assert infer.main(args(photo_path, tmp_path / "out", "--model", export, "--driver", tmp_path / "drive.mp4",
                           "--driver-aus", tmp_path / "of.csv", "--no-detect")) == 0
    assert [float(r[0]) for r in recorded] == [1, 1, 3, 4, 4]
    assert video_info(tmp_path / "out" / "astro_drive.mp4") == (25.0, 5, 32, 32)  # --no-detect: the crop


def test_driver_without_any_face(export, photo_path, tmp_path):
    driver_video(tmp_path / "empty.mp4", faces_at=[], n=4)
    with pytest.raises(UserError, match="empty.mp4: no face found in any of its 4 frames"):
        infer.main(args(photo_path, tmp_path / "out", "--model", export, "--driver", tmp_path / "empty.mp4"))
    assert not (tmp_path / "out").exists()
    with pytest.raises(UserError, match="takes one --src image, not a folder"):
        infer.main(args(tmp_path, tmp_path / "out", "--model", export, "--driver", tmp_path / "empty.mp4"))
