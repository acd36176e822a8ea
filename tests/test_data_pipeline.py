"""data/pipeline.py with image files: odd formats, per-sample flips, workers, in-memory resizing."""
import cv2
import numpy as np

from data.faceset import FaceSet
from data.pipeline import make_dataset


def gradient(k, size=16):
    """An image whose left and right halves differ, so a mirror image is told apart; brightness k."""
    image = np.zeros((size, size, 3), np.uint8)
    image[:, : size // 2] = 6 * k
    image[:, size // 2:] = 6 * k + 5
    return image


def test_gray_rgba_16_bit_and_misnamed_files_decode_to_rgb(tmp_path):
    colour = gradient(3)
    writers = {"gray.png": colour[..., 0], "rgba.png": np.dstack([colour, np.full((16, 16), 7, np.uint8)]),
               "deep.png": colour.astype(np.uint16) * 257, "plain.bmp": colour}
    paths = []
    for name, image in writers.items():
        cv2.imwrite(str(tmp_path / name), image)
        paths.append(str(tmp_path / name))
    (tmp_path / "png_inside.jpg").write_bytes(cv2.imencode(".png", colour)[1].tobytes())
    paths.append(str(tmp_path / "png_inside.jpg"))
    source = FaceSet(aus=np.zeros((5, 17)), ids=list("abcde"), paths=paths)
    (real, _), = list(make_dataset(source, 5, 16, shuffle=False, flip=False))
    pixels = np.round((real.numpy() + 1) * 127.5).astype(np.uint8)
    assert pixels.shape == (5, 16, 16, 3)
    for image in pixels:  # every one is the same 3-channel picture (alpha dropped, 16 bit scaled to 8)
        np.testing.assert_array_equal(image, colour)


def test_flips_are_per_sample_and_do_not_depend_on_the_batch(tmp_path):
    n = 40
    source = FaceSet(aus=np.repeat(np.arange(n)[:, None] / 10, 17, 1), ids=[str(k) for k in range(n)],
                        images=np.stack([gradient(k) for k in range(n)]))

    def flips(batch, skip=0):
        out = {}
        for real, ys in make_dataset(source, batch, 16, epoch=2, seed=5, skip_batches=skip):
            for image, y in zip(real.numpy(), ys.numpy()):
                out[int(round(y[0] * 50))] = bool(image[0, 0, 0] > image[0, -1, 0])  # left half brighter: mirrored
        return out

    by_8, by_5 = flips(8), flips(5)
    assert by_8 == by_5 and 10 < sum(by_8.values()) < 30  # same sample, same flip, whatever the batch size
    resumed = flips(8, skip=3)
    assert all(by_8[k] == v for k, v in resumed.items()) and len(resumed) == 16


def test_multi_worker_skip_counts_steps(tmp_path):
    paths = []
    for k in range(12):
        cv2.imwrite(str(tmp_path / f"{k}.png"), gradient(k, 8))
        paths.append(str(tmp_path / f"{k}.png"))
    source = FaceSet(aus=np.repeat(np.arange(12)[:, None] / 10, 17, 1), ids=[str(k) for k in range(12)],
                        paths=paths)

    def numbers(**kw):
        return [[int(round(v * 50)) for v in ys.numpy()[:, 0]] for _, ys in make_dataset(source, 2, 8, seed=1, **kw)]

    single = [k for batch in numbers() for k in batch]
    workers = [numbers(num_workers=2, worker_index=w) for w in (0, 1)]
    assert [k for b0, b1 in zip(*workers) for pair in zip(b0, b1) for k in pair] == single
    assert numbers(num_workers=2, worker_index=1, skip_batches=1) == workers[1][1:]  # one step = 2 x 2 samples


def test_in_memory_images_of_another_size_are_resized():
    images = np.stack([np.full((32, 32, 3), 40 * k, np.uint8) for k in range(3)])
    source = FaceSet(aus=np.zeros((3, 17)), ids=list("abc"), images=images)
    (real, _), = list(make_dataset(source, 3, 16, shuffle=False, flip=False))
    assert real.shape == (3, 16, 16, 3)
    np.testing.assert_allclose(real.numpy()[:, 5, 5, 0], [40 * k / 127.5 - 1 for k in range(3)], atol=1e-6)
