"""The web page's work without the page (inference/interactive.py) and app.py's command line. The browser test
is test_app_browser.py. The model is the untrained tiny export: edits are noise, which is all plumbing needs."""
import os
import socket
import struct
import zlib

import cv2
import numpy as np
import pytest
import skimage.data
from PIL import Image

from data.synthetic import HELD_OUT_IDENTITY_OFFSET, render_face
from inference import interactive as ia
from inference.edit import estimate_aus, load_model
from test_cli import assert_one_line_error, run
from utils.errors import UserError


@pytest.fixture(scope="module")
def model(export):
    return load_model(export)


@pytest.fixture(scope="module")
def astronaut_png(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("photos") / "astronaut.png")
    cv2.imwrite(path, skimage.data.astronaut()[:, :, ::-1])
    return path


@pytest.fixture(scope="module")
def session(model, astronaut_png):
    return ia.open_image(model, ia.read_upload(astronaut_png), "astronaut.png")


def png_header(width, height):
    """A small PNG file that claims width x height pixels: its header, and no image data."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def test_bad_uploads_are_refused_with_the_file_name(tmp_path):
    (tmp_path / "notes.txt").write_text("not an image")
    with pytest.raises(UserError, match=r"^notes.txt: is not a readable image"):
        ia.read_upload(str(tmp_path / "notes.txt"))
    huge = tmp_path / "huge.jpg"
    with open(huge, "wb") as f:
        f.truncate(ia.MAX_UPLOAD_MB * 2 ** 20 + 1)  # sparse: no time or disk
    with pytest.raises(UserError, match=rf"^huge.jpg: is 25 MB; the page takes images up to {ia.MAX_UPLOAD_MB} MB"):
        ia.read_upload(str(huge))
    (tmp_path / "bomb.png").write_bytes(png_header(10000, 6000))  # 60 megapixels, refused before decoding
    with pytest.raises(UserError, match=r"^bomb.png: is too large an image \(10000 x 6000 pixels; the page takes "
                                       r"up to 50 megapixels\)"):
        ia.read_upload(str(tmp_path / "bomb.png"))
    (tmp_path / "bomb2.png").write_bytes(png_header(20000, 20000))  # over Pillow's own limit
    with pytest.raises(UserError, match=r"^bomb2.png: is too large an image \(the page takes up to 50"):
        ia.read_upload(str(tmp_path / "bomb2.png"))
    Image.new("RGB", (8, 8)).save(tmp_path / "dot.png")
    with pytest.raises(UserError, match=r"^dot.png: is too small \(8 x 8"):
        ia.read_upload(str(tmp_path / "dot.png"))
    big = np.zeros((100, ia.WORK_MAX_SIDE * 2, 3), np.uint8)
    cv2.imwrite(str(tmp_path / "wide.png"), big)
    assert ia.read_upload(str(tmp_path / "wide.png"), "wide.png").shape == (50, ia.WORK_MAX_SIDE, 3)


def test_a_photo_opens_with_its_estimated_aus(model, session):
    assert session.name == "astronaut.png" and len(session.photo.faces) == 1 and not session.photo.whole
    crop = session.photo.faces[0].real
    assert crop.shape == (model.image_size, model.image_size, 3)
    np.testing.assert_allclose(session.source, estimate_aus(model, crop[None])[0])
    assert session.describe() == "astronaut.png: 512 x 512, 1 face found"
    drawn = ia.draw_faces(session)
    assert drawn.shape == session.photo.image.shape and (drawn != session.photo.image).any()


def test_edit_pastes_the_face_back_and_follows_the_aus(model, session):
    edited, attention, strip = ia.edit(model, session, session.source)
    image = session.photo.image
    assert edited.shape == image.shape and attention.shape == image.shape[:2] and attention.dtype == np.uint8
    assert strip.shape == (model.image_size, 4 * model.image_size, 3)
    x1, y1, x2, y2 = session.photo.faces[0].box
    changed = np.argwhere(np.any(edited != image, axis=-1))
    assert len(changed) and (changed.min(axis=0) > [y1 - (y2 - y1), x1 - (x2 - x1)]).all()  # near the face only
    aus = np.array(session.source)
    aus[8] = 5.0  # AU12 lip corner puller
    assert (ia.edit(model, session, aus)[0] != edited).any()
    with pytest.raises(UserError, match="expected 17 numbers"):
        ia.edit(model, session, aus[:5])


def test_builtin_face_is_a_held_out_identity_used_as_a_crop(model):
    image = ia.builtin_face(3, model.image_size)
    np.testing.assert_array_equal(image, render_face(HELD_OUT_IDENTITY_OFFSET + 3, np.zeros(17), model.image_size))
    built = ia.open_image(model, image, "built-in face 3")
    assert built.photo.whole and built.describe().startswith("built-in face 3: 32 x 32, edited whole")
    edited, attention, _ = ia.edit(model, built, np.zeros(17))
    assert edited.shape == image.shape and attention.shape == image.shape[:2]
    for bad in (0, ia.BUILTIN_FACES + 1):
        with pytest.raises(UserError, match="is not a number from 1 to"):
            ia.builtin_face(bad, model.image_size)


def test_no_face_says_how_to_edit_the_whole_image(model):
    coffee = np.ascontiguousarray(skimage.data.coffee())
    with pytest.raises(UserError, match=r"^coffee.jpg: no face found in this 600 x 400 image .*tick 'whole image'"):
        ia.open_image(model, coffee, "coffee.jpg")
    assert ia.open_image(model, coffee, "coffee.jpg", detect=False).photo.whole


def test_faces_to_choose_from(model):
    scene = np.full((300, 600, 3), 90, np.uint8)
    scene[60:220, 20:180] = render_face(HELD_OUT_IDENTITY_OFFSET + 1, np.zeros(17), 160)
    scene[100:220, 400:520] = render_face(HELD_OUT_IDENTITY_OFFSET + 2, np.zeros(17), 120)
    two = ia.open_image(model, scene, "two.png")
    assert len(two.photo.faces) == 2 and two.face == 0
    assert ia.choose_face(two, 2).face == 1
    np.testing.assert_array_equal(two.source, two.aus[1])
    assert "editing face 2" in two.describe()
    edited, _, _ = ia.edit(model, two, two.source)
    changed = np.argwhere(np.any(edited != scene, axis=-1))[:, 1]
    assert changed.min() > 300  # only the second (right-hand) face was edited
    with pytest.raises(UserError, match="has no face 7"):
        ia.choose_face(two, 7)


def test_animation_from_the_estimated_aus(model, session, tmp_path):
    target = np.full(17, 4.0, np.float32)
    gif, mp4 = ia.animate(model, session, target, str(tmp_path), frames=4, pingpong=True)
    assert gif == str(tmp_path / "astronaut_animation.gif") and mp4 == str(tmp_path / "astronaut_animation.mp4")
    with Image.open(gif) as g:
        assert g.n_frames == 6 and g.size == (512, 512)  # 4 there, 2 back
    video = cv2.VideoCapture(mp4)
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == 6
    video.release()
    first = np.asarray(Image.open(gif).convert("RGB"))
    still, _, _ = ia.edit(model, session, session.source)  # the first frame is the source expression
    assert np.abs(first.astype(int) - still.astype(int)).mean() < 8  # GIF palette
    with pytest.raises(UserError, match="choose 2 to"):
        ia.animate(model, session, target, str(tmp_path), frames=ia.MAX_FRAMES + 1)


def test_app_command_line_errors(tmp_path):
    result = run("app.py", "--model", str(tmp_path / "missing"), cwd=tmp_path)
    assert_one_line_error(result, str(tmp_path / "missing"), "does not exist")
    result = run("app.py", cwd=tmp_path)  # no --model and no runs/ here
    assert_one_line_error(result, "runs: no exported model found")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run("app.py", "--port", str(port), "--model", str(tmp_path / "missing"), cwd=tmp_path)
    assert_one_line_error(result, f"127.0.0.1:{port}: cannot serve the page here")
    assert os.listdir(tmp_path) == []  # nothing written


def test_app_flags_help_and_port_range(capsys):
    import app
    with pytest.raises(SystemExit) as exit_info:
        app.parse_args(["--help"])
    assert exit_info.value.code == 0
    flat = " ".join(capsys.readouterr().out.split())
    assert flat.index("model: --model PATH") < flat.index("serving: --host ADDRESS")
    assert "(default: 127.0.0.1)" in flat and "--port N port, 1-65535 (default: 7860)" in flat
    with pytest.raises(UserError, match=r"^--port: 70000 is not a port number$"):
        app.main(["--port", "70000"])


def test_where_the_page_is():
    import app
    assert app.where("127.0.0.1", 7860) == "open http://127.0.0.1:7860"
    everywhere = app.where("0.0.0.0", 8000)
    assert everywhere.startswith("open http://127.0.0.1:8000 here; reachable from the network at http://")
    assert f"http://{app.network_address()}:8000 " in everywhere


@pytest.mark.slow  # 11 s under load
@pytest.mark.subprocess
def test_the_app_as_a_user_runs_and_stops_it(export, tmp_path):
    """Served, it says where (and nothing about share links); stopped (SIGTERM here, as Ctrl-C), it exits 0
    and leaves no temporary folder of its own behind."""
    import signal
    import subprocess
    import sys
    import urllib.request

    from conftest import ROOT
    from utils.browser import free_port
    port = free_port()
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = dict(os.environ, PYTHONPATH=ROOT, TMPDIR=str(tmp))
    with subprocess.Popen([sys.executable, os.path.join(ROOT, "app.py"), "--model", export, "--port", str(port)],
                          cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as app:
        try:
            first = app.stdout.readline()  # printed once the page is served
            assert first.startswith(f"model: {export} (32 px); open http://127.0.0.1:{port} (Ctrl-C stops)"), \
                first + app.stderr.read()
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=60) as page:
                assert page.status == 200
            assert [n for n in os.listdir(tmp) if n.startswith("ganimation-app-")]  # while it runs
            app.send_signal(signal.SIGTERM)
            out, err = app.communicate(timeout=60)
        finally:
            app.kill()
    assert app.returncode == 0, err
    assert "share" not in first + out + err
    assert not [n for n in os.listdir(tmp) if n.startswith("ganimation-app-")]
