"""Writing files so that a killed process never leaves a half-written one: write a temporary file in the
same folder, then rename it into place (atomic on POSIX)."""
import os
import tempfile

import cv2
import numpy as np


def atomic_write_bytes(path, data):
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the permissions open() would
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def atomic_write_text(path, text):
    atomic_write_bytes(path, text.encode("utf-8"))


def encode_image(image_rgb, ext=".png"):
    """uint8 RGB (H, W, 3) or gray (H, W) -> encoded bytes."""
    image = np.asarray(image_rgb)
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(ext, image)
    if not ok:
        raise ValueError(f"could not encode an image of shape {image.shape} as {ext}")
    return buf.tobytes()


def write_png(path, image_rgb):
    atomic_write_bytes(path, encode_image(image_rgb, ".png"))


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask
