"""The data set that training reads: any layout read (data/readers.py), every image and AU row checked, one
summary printed, and the usable samples returned.

    faces = load_dataset("DATASET", image_size=128)            # a FaceSet (or a ShardSet of TFRecord shards)
    faces = load_dataset("DATASET", strict=True)               # a UserError if anything at all is wrong

Images are checked from their bytes in parallel threads: the format and size from the header (no decoding), a
hash of the bytes for copies, then OpenCV decodes the image at 1/8 scale (a JPEG then skips most of its inverse
DCT), which fails on truncated or garbled files as TensorFlow's decoder does, so the pipeline never meets a file
it cannot read. About 13,000 images of 128 px per second on 2 cores: 200,000 in 15 s. What is left out, and why,
is `python -m data.validate`'s table (data/validate.py).
"""
import hashlib
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import List, Optional

import cv2
import numpy as np

from data.images import MAX_PIXELS, image_format, image_size_from_header
from data.problems import Problems
from data.readers import read_dataset
from data.shards import ShardSet
from utils.errors import UserError
from utils.progress import progress_bar

MISSING = "image file is missing"
EMPTY = "image file is empty"
UNREADABLE = "image file cannot be read"
NOT_AN_IMAGE = "not an image (not JPEG, PNG, BMP or GIF)"
CORRUPT = "image is truncated or corrupt (cannot be decoded)"
SAME_BYTES = "same image bytes as an earlier sample (the first is kept)"
TOO_LARGE = f"image is over {MAX_PIXELS / 1e6:g} megapixels by its header (not decoded)"

_CHUNK = 256  # paths per thread task: one future per file costs more than checking a small JPEG


@dataclass
class ImageCheck:
    problem: Optional[str] = None  # None: the image decodes
    width: int = 0
    height: int = 0
    digest: bytes = b""            # hash of the file's bytes, to find copies


# ----------------------------------------------------------------------------------------------- one image


def check_image(path) -> ImageCheck:
    """Read one image file and say what, if anything, is wrong with it."""
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except FileNotFoundError:
        return ImageCheck(MISSING)
    except OSError as exc:
        return ImageCheck(f"{UNREADABLE} ({exc.strerror or exc})")
    if data.size == 0:
        return ImageCheck(EMPTY)
    size = image_size_from_header(data)
    if size is None:
        return ImageCheck(CORRUPT if image_format(data) else NOT_AN_IMAGE)
    if size[0] * size[1] > MAX_PIXELS:
        return ImageCheck(TOO_LARGE, *size)
    digest = hashlib.blake2b(data, digest_size=16).digest()
    try:
        decoded = cv2.imdecode(data, cv2.IMREAD_REDUCED_GRAYSCALE_8)
    except cv2.error:
        decoded = None
    if decoded is None:
        return ImageCheck(CORRUPT, *size, digest)
    return ImageCheck(None, *size, digest)


def check_images(paths, workers: int = 8, label: str = "checking images") -> List[ImageCheck]:
    """check_image for every path, in parallel threads (file reads and OpenCV decoding release the GIL). What
    the decoders' libraries print about bad files (libpng) is kept off the terminal: the summary names them."""
    from utils.cli import quiet_native_stderr
    paths = list(paths)
    chunks = [paths[i:i + _CHUNK] for i in range(0, len(paths), _CHUNK)]
    results: List[ImageCheck] = []
    with quiet_native_stderr(), progress_bar(len(paths), label) as bar, ThreadPoolExecutor(max(1, workers)) as pool:
        for checked in pool.map(lambda chunk: [check_image(p) for p in chunk], chunks):
            results.extend(checked)
            bar.update(len(checked))
    return results


# ----------------------------------------------------------------------------------------------- a data set


def check_source(source, problems: Problems, image_size: Optional[int] = None, workers: int = 8):
    """Check every image file of `source` (paths mode); record problems; return the usable samples.

    image_size: images of another size are kept with a warning (the pipeline resizes them). Sources held in
    memory, and TFRecord shards (checked when they were written), are returned as they are.
    """
    if isinstance(source, ShardSet) or source.images is not None:
        return source
    checks = check_images(source.paths, workers)
    keep, first_of = [], {}
    wrong_size = []
    for k, (path, check) in enumerate(zip(source.paths, checks)):
        if check.problem is not None:
            problems.skip(check.problem, path)
            continue
        if check.digest in first_of:
            problems.skip(SAME_BYTES, f"{path} (= {source.paths[first_of[check.digest]]})")
            continue
        first_of[check.digest] = k
        if image_size and (check.width, check.height) != (image_size, image_size):
            wrong_size.append(f"{path} ({check.width} x {check.height})")
        keep.append(k)
    problems.warn(f"image is not {image_size} x {image_size} (resized when read)", wrong_size)
    return source.subset(keep) if len(keep) < len(source) else source


def load_dataset(path, split: str = "train", allow_pickle: bool = False, min_confidence: Optional[float] = None,
                 image_size: Optional[int] = None, strict: bool = False, workers: int = 8, stream=None,
                 problems: Optional[Problems] = None):
    """Read a data set (data.readers.read_dataset), check its AUs and images, print a summary to `stream`
    (stdout by default: stderr is kept for the one-line error), and return the usable samples.

    Raises UserError when nothing usable is left, or with strict=True when anything at all was wrong: the one
    place where a problem can stop the run. Pass `problems` to get the full lists afterwards (e.g. to write
    them out).
    """
    stream = stream or sys.stdout
    problems = problems if problems is not None else Problems()
    try:
        source = read_dataset(path, split=split, allow_pickle=allow_pickle, min_confidence=min_confidence,
                              problems=problems)
        start = time.perf_counter()
        source = check_source(source, problems, image_size, workers)
        seconds = time.perf_counter() - start
    except UserError:
        _print_summary(stream, path, None, problems, None)
        raise
    _print_summary(stream, path, source, problems, seconds)
    if len(source) == 0:
        raise UserError(path, f"no usable samples: {problems.one_line()}")
    if strict and problems:
        raise UserError(path, f"stopped by --strict: {problems.one_line()} (details above)")
    return source


def _print_summary(stream, path, source, problems: Problems, seconds):
    if source is None and not problems:
        return
    lines = []
    if source is not None:
        usable = len(source)
        checked = usable + problems.count("skipped")
        what = "" if seconds is None or isinstance(source, ShardSet) or source.images is not None else (
            f"; images checked in {seconds:.1f} s ({checked / max(seconds, 1e-9):,.0f}/s)")
        lines.append(f"data: {path}: {usable:,} usable samples, {problems.count('skipped'):,} left out, "
                     f"{problems.count('warnings'):,} warnings{what}")
    else:
        lines.append(f"data: {path}: problems found before stopping:")
    lines += problems.lines()
    stream.write("\n".join(lines) + "\n")
    stream.flush()
