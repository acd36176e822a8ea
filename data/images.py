"""Image files: which there are in a folder, what their headers say, and reading and writing them (any common
format in, uint8 RGB out).

Images over MAX_PIXELS (50 megapixels) are refused from their header, before anything is decoded: a small file
can claim 60000 x 60000 pixels (an "image bomb", 10 GB once decoded).
"""
import io
import os
import struct
import warnings
from typing import List, Optional

import cv2
import numpy as np

from utils.cli import quiet_native_stderr
from utils.errors import UserError
from utils.files import atomic_write_bytes, encode_image

MAX_PIXELS = 50_000_000  # larger images are refused before decoding (infer.py, data sets, the web page)
# The image files looked for: photos (infer.py, data.prepare: what read_image decodes), and of those the ones a
# data set's images may be (what the training pipeline decodes), in order of preference for the same name.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
DATASET_EXTENSIONS = IMAGE_EXTENSIONS[:3]
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # start-of-frame markers (not DHT, JPG, DAC)
_SIGNATURES = {b"\xff\xd8\xff": "jpeg", b"\x89PNG": "png", b"GIF8": "gif", b"BM": "bmp"}


def list_images(folder, recursive=False, extensions=IMAGE_EXTENSIONS) -> List[str]:
    """The image files in `folder` (recursive: in its sub-folders too) by extension, as sorted paths relative to
    it; hidden files and folders are left out. An empty list when there are none; UserError when `folder` cannot
    be listed."""
    def unlisted(error):
        if os.path.abspath(error.filename) == os.path.abspath(folder):
            raise UserError(folder, f"cannot list: {error.strerror or error}")

    found = []
    for root, dirs, files in os.walk(folder, onerror=unlisted):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")) if recursive else []
        for name in files:
            path = os.path.join(root, name)
            if not name.startswith(".") and os.path.splitext(name)[1].lower() in extensions and os.path.isfile(path):
                found.append(os.path.relpath(path, folder))
    return sorted(found, key=lambda p: p.split(os.sep))


def image_format(data) -> Optional[str]:
    """"jpeg", "png", "gif" or "bmp" from the first bytes of a file (bytes or a uint8 array), else None."""
    head = bytes(data[:4])
    return next((kind for signature, kind in _SIGNATURES.items() if head.startswith(signature)), None)


def image_size_from_header(data) -> Optional[tuple]:
    """(width, height) from a JPEG, PNG, BMP or GIF header (bytes or a uint8 array); None for anything else
    or a header cut short."""
    head, kind = bytes(data[:32]), image_format(data)
    try:
        if kind == "png" and head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR":
            return struct.unpack(">II", head[16:24])
        if kind == "gif" and head[:6] in (b"GIF87a", b"GIF89a"):
            return struct.unpack("<HH", head[6:10])
        if kind == "bmp":
            w, h = struct.unpack("<ii", head[18:26])
            return w, abs(h)  # a negative height means rows stored top-down
        if kind == "jpeg":
            return _jpeg_size(data)
    except struct.error:
        return None
    return None


def _jpeg_size(data) -> Optional[tuple]:
    """Walk the JPEG markers to the start-of-frame segment; only the header is read."""
    i, n = 2, len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in _JPEG_SOF:
            if i + 9 > n:
                return None
            h = (int(data[i + 5]) << 8) | int(data[i + 6])
            w = (int(data[i + 7]) << 8) | int(data[i + 8])
            return w, h
        if 0xD0 <= marker <= 0xD9 or marker == 0x01:  # markers without a length
            i += 2
            continue
        i += 2 + ((int(data[i + 2]) << 8) | int(data[i + 3]))
    return None


def pixel_problem(data) -> Optional[str]:
    """Why encoded image bytes (or a uint8 array) are refused before decoding, or None: more than MAX_PIXELS by
    the header (JPEG, PNG, BMP and GIF parsed here; TIFF, WebP and the rest by Pillow, which reads the header
    only). Bytes that are no image Pillow knows pass: the decoder then says what is wrong with them."""
    limit = f"more than the limit of {MAX_PIXELS / 1e6:g} megapixels"
    size = image_size_from_header(data)
    if size is None:
        from PIL import Image
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                with Image.open(io.BytesIO(data)) as probe:
                    size = probe.size
        except Image.DecompressionBombError:  # Pillow's own limit, far above ours
            return f"is too large an image ({limit})"
        except Exception:
            return None
    if size[0] * size[1] > MAX_PIXELS:
        return f"is too large an image ({size[0]} x {size[1]} pixels, {limit})"
    return None


def read_image(path):
    """An image file -> uint8 RGB (H, W, 3).

    JPEG, PNG, BMP, TIFF, WebP; gray, RGBA (alpha dropped) and 16-bit images are converted, and the EXIF
    orientation is applied. A missing, empty, corrupt or too large (MAX_PIXELS, from the header) file is a
    UserError naming it. What the decoder's libraries print about a bad file is kept off the terminal.
    """
    if not os.path.exists(path):
        raise UserError(path, "does not exist")
    if os.path.isdir(path):
        raise UserError(path, "is a folder, not an image")
    data = np.fromfile(path, dtype=np.uint8)
    if data.size == 0:
        raise UserError(path, "is empty")
    problem = pixel_problem(data)
    if problem:
        raise UserError(path, problem)
    try:
        with quiet_native_stderr():
            image = cv2.imdecode(data, cv2.IMREAD_COLOR)  # 8-bit BGR, EXIF-rotated, gray and alpha handled
    except cv2.error:  # OpenCV's own limits (a format whose size the header check could not read)
        image = None
    if image is None:
        raise UserError(path, "is not a readable image (corrupt, or an unsupported format)")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def resize_square(image, size):
    """Resize an RGB image to (size, size): area averaging to shrink, cubic to enlarge."""
    h, w = image.shape[:2]
    if (h, w) == (size, size):
        return image
    interpolation = cv2.INTER_AREA if min(h, w) > size else cv2.INTER_CUBIC
    return cv2.resize(image, (size, size), interpolation=interpolation)


def write_image(path, image_rgb):
    """Write uint8 RGB (or gray) to path (format from the extension), atomically."""
    ext = os.path.splitext(path)[1].lower() or ".png"
    atomic_write_bytes(path, encode_image(image_rgb, ext))
