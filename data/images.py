"""Reading and writing photos: any common format in, uint8 RGB out."""
import os

import cv2
import numpy as np

from data.errors import DataError
from utils.files import atomic_write_bytes, encode_image


def read_image(path):
    """An image file -> uint8 RGB (H, W, 3).

    JPEG, PNG, BMP, TIFF, WebP; gray, RGBA (alpha dropped) and 16-bit images are converted, and the EXIF
    orientation is applied. A missing, empty or corrupt file is a DataError naming it.
    """
    if not os.path.exists(path):
        raise DataError(path, "does not exist")
    if os.path.isdir(path):
        raise DataError(path, "is a folder, not an image")
    data = np.fromfile(path, dtype=np.uint8)
    if data.size == 0:
        raise DataError(path, "is empty")
    image = cv2.imdecode(data, cv2.IMREAD_COLOR)  # 8-bit BGR, EXIF-rotated, gray and alpha handled
    if image is None:
        raise DataError(path, "is not a readable image (corrupt, or an unsupported format)")
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
