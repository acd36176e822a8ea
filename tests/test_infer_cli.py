"""infer.py on real photos as a user runs it: a subprocess, real files, exit codes, one-line errors."""
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
import skimage.data

from conftest import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.subprocess]  # infer.py on photos, 9-11 s each



def infer(*args, cwd):
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.run([sys.executable, os.path.join(ROOT, "infer.py"), *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_photo_in_the_wild(export, tmp_path):
    photo = np.ascontiguousarray(skimage.data.astronaut())
    canvas = np.full((600, 900, 3), 30, np.uint8)  # the astronaut somewhere in a larger photo
    canvas[40:552, 300:812] = photo
    cv2.imwrite(str(tmp_path / "wide.png"), canvas[:, :, ::-1])
    result = infer("--src", tmp_path / "wide.png", "--expression", "happy", "--face", "largest", "--model", export,
                   "--out", tmp_path / "out", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(tmp_path / "out" / "wide_happy.png")]
    assert result.stderr == ""  # no TensorFlow or MTCNN chatter
    out = cv2.imread(str(tmp_path / "out" / "wide_happy.png"))[:, :, ::-1]
    assert out.shape == canvas.shape
    changed = np.argwhere(np.any(out != canvas, axis=-1))
    (y1, x1), (y2, x2) = changed.min(axis=0), changed.max(axis=0)
    assert 40 + 40 < y1 < y2 < 40 + 200 and 300 + 150 < x1 < x2 < 300 + 300  # only around the face


def test_photo_without_a_face(export, tmp_path):
    cv2.imwrite(str(tmp_path / "coffee.jpg"), skimage.data.coffee()[:, :, ::-1])
    result = infer("--src", tmp_path / "coffee.jpg", "--expression", "happy", "--model", export,
                   "--out", tmp_path / "out", cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.stderr
    assert "coffee.jpg: no face found" in lines[0] and "--no-detect" in lines[0]
    assert not (tmp_path / "out").exists()
