"""Benchmark: an image's size from its header, data/images.py's own parser against Pillow's lazy open.

    python bench/image_headers.py                 # 20,000 files, 128 x 128, a quarter each JPEG, PNG, BMP, GIF
    python bench/image_headers.py --n 2000 --repeats 3

Writes N small images into a temporary folder, reads each file's bytes as data.dataset.check_image does, then
times the two ways of getting (width, height) from the bytes in memory, and the whole per-file check's read +
probe: data.images.image_size_from_header, and PIL.Image.open(...).size (which reads the header, decodes
nothing). For scale, also times data.dataset.check_image, the data check's whole work per file (read, header,
hash, a reduced decode). Reports microseconds per file and the time for 200,000 files, the best of --repeats runs.
"""
import io
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from data.images import image_size_from_header  # noqa: E402
from utils.cli import ArgumentParser  # noqa: E402


def write_files(folder, n, size):
    """n files of random pixels, cycling through JPEG, PNG, BMP and GIF."""
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    encoded = {ext: cv2.imencode(ext, image)[1].tobytes() for ext in (".jpg", ".png", ".bmp")}
    gif = io.BytesIO()
    Image.fromarray(image).save(gif, format="GIF")
    encoded[".gif"] = gif.getvalue()
    paths = []
    for k in range(n):
        ext = (".jpg", ".png", ".bmp", ".gif")[k % 4]
        paths.append(os.path.join(folder, f"{k:06d}{ext}"))
        with open(paths[-1], "wb") as f:
            f.write(encoded[ext])
    return paths


def by_hand(data):
    return image_size_from_header(data)


def by_pillow(data):
    with Image.open(io.BytesIO(data)) as image:
        return image.size


def best_seconds(fn, items, repeats):
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for item in items:
            fn(item)
        best = min(best, time.perf_counter() - t0)
    return best


def main():
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20_000, help="how many files")
    parser.add_argument("--size", type=int, default=128, help="their width and height")
    parser.add_argument("--repeats", type=int, default=5, help="runs of each timing; the best is reported")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        paths = write_files(folder, args.n, args.size)
        datas = [np.fromfile(p, dtype=np.uint8) for p in paths]
        sizes = {by_hand(d) for d in datas} | {by_pillow(d) for d in datas}
        assert sizes == {(args.size, args.size)}, sizes  # both read every header right
        rows = [("header only, bytes in memory", by_hand, by_pillow, datas),
                ("read the file + header", lambda p: by_hand(np.fromfile(p, dtype=np.uint8)),
                 lambda p: by_pillow(np.fromfile(p, dtype=np.uint8)), paths)]
        print(f"{args.n:,} files of {args.size} x {args.size} (JPEG, PNG, BMP, GIF), best of {args.repeats}")
        for name, hand, pillow, items in rows:
            t_hand, t_pillow = best_seconds(hand, items, args.repeats), best_seconds(pillow, items, args.repeats)
            scale = 200_000 / args.n
            print(f"{name}: by hand {1e6 * t_hand / args.n:.1f} us/file ({scale * t_hand:.1f} s per 200,000), "
                  f"Pillow {1e6 * t_pillow / args.n:.1f} us/file ({scale * t_pillow:.1f} s per 200,000), "
                  f"Pillow / hand {t_pillow / t_hand:.2f}")
        from data.dataset import check_image
        t_check = best_seconds(check_image, paths, args.repeats)
        print(f"check_image (read, header, hash, decode): {1e6 * t_check / args.n:.1f} us/file "
              f"({200_000 / args.n * t_check:.1f} s per 200,000)")


if __name__ == "__main__":
    main()
