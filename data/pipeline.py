"""The `tf.data` pipeline that training reads, the same for the synthetic faces and for real datasets.

Every epoch has its own deterministic order (seeded by `seed` and the epoch), so a resumed run skips the
batches it has already trained on and continues exactly where it stopped. Batches have a fixed shape
(drop_remainder), so the training steps never retrace.

Yields (real, y_src): real (B, S, S, 3) float32 in [-1, 1]; y_src (B, 17) float32 on the networks' [0, 1] scale.
"""
import numpy as np
import tensorflow as tf

from data.constants import AU_MAX
from models.ops import to_model_pixels

AUTOTUNE = tf.data.AUTOTUNE


def _decode_file(path, image_size):
    """One image file (JPEG/PNG/BMP/GIF, gray or colour, 8 or 16 bit) -> (S, S, 3) uint8."""
    image = tf.io.decode_image(tf.io.read_file(path), channels=3, dtype=tf.uint8, expand_animations=False)
    image.set_shape([None, None, 3])
    return _resize(image, image_size)


def _resize(image, image_size):
    shape = tf.shape(image)

    def resized():
        out = tf.image.resize(image, [image_size, image_size], method="area", antialias=True)
        return tf.cast(tf.clip_by_value(tf.round(out), 0, 255), tf.uint8)

    same = tf.logical_and(tf.equal(shape[0], image_size), tf.equal(shape[1], image_size))
    return tf.cond(same, lambda: image, resized)


def make_dataset(source, batch_size, image_size, epoch=0, skip_batches=0, seed=0, shuffle=True, flip=True,
                 repeat=False, num_workers=1, worker_index=0):
    """The batches of one epoch of `source` (a data.source.FaceSource).

    epoch, seed: fix the order (and the flips) of this epoch. skip_batches: batches already done (resume).
    repeat: cycle forever (for fixed-size sample batches); num_workers / worker_index: each worker of a
    multi-worker run reads its own share of every batch's samples.
    """
    n = len(source)
    if n < batch_size:
        raise ValueError(f"the dataset has {n} samples, fewer than one batch of {batch_size}")
    indices = tf.data.Dataset.range(n)
    if shuffle:
        indices = indices.shuffle(n, seed=seed * 100003 + epoch, reshuffle_each_iteration=False)
    indices = indices.skip(skip_batches * batch_size)
    if num_workers > 1:
        indices = indices.shard(num_workers, worker_index)
    if repeat:
        indices = indices.repeat()

    aus = tf.constant(np.asarray(source.aus, np.float32) / AU_MAX)  # (N, 17), small
    if source.images is not None:
        images = source.images
        if images.shape[1:3] != (image_size, image_size):
            raise ValueError(f"in-memory images are {images.shape[1:3]}, the model takes {image_size}")
        batches = indices.batch(batch_size, drop_remainder=True).map(
            lambda idx: (tf.ensure_shape(tf.numpy_function(lambda i: images[i], [idx], tf.uint8),
                                         [batch_size, image_size, image_size, 3]), tf.gather(aus, idx), idx),
            num_parallel_calls=AUTOTUNE)
    else:
        paths = tf.constant([str(p) for p in source.paths])
        batches = indices.map(lambda i: (_decode_file(paths[i], image_size), aus[i], i),
                              num_parallel_calls=AUTOTUNE, deterministic=True)
        # A file that cannot be decoded is left out rather than ending a long run mid-epoch.
        batches = batches.ignore_errors(log_warning=True).batch(batch_size, drop_remainder=True)

    def prepare(images, y_src, idx):
        real = to_model_pixels(images)
        if flip:  # random horizontal flip per sample, reproducible from (seed, epoch, the batch's first index)
            coins = tf.random.stateless_uniform([batch_size], [seed * 1009 + epoch, tf.cast(idx[0], tf.int32)])
            real = tf.where(coins[:, None, None, None] < 0.5, tf.reverse(real, axis=[2]), real)
        return real, y_src

    return batches.map(prepare, num_parallel_calls=AUTOTUNE).prefetch(AUTOTUNE)


def steps_per_epoch(source, batch_size):
    """Full batches per epoch (the last partial batch is dropped)."""
    return len(source) // batch_size
