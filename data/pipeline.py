"""The `tf.data` pipeline that training reads, the same for the synthetic faces and for real datasets.

Every epoch has its own deterministic order (seeded by `seed` and the epoch), so a resumed run skips the
batches it has already trained on and continues exactly where it stopped. Batches have a fixed shape
(drop_remainder), so the training steps never retrace.

Three kinds of source:
* images in memory (FaceSet.images) and image files (FaceSet.paths): the epoch's order is a full
  permutation of the sample indices; files are read and decoded in parallel (AUTOTUNE), in order.
* TFRecord shards (ShardSet, data/shards.py, `python -m data.tfrecords`): the epoch's order is the shard files in a
  seeded order, read 16 at a time round-robin, then a seeded shuffle buffer of `shuffle_buffer` records (bounded
  memory; the writer already spread the samples over the shards in a seeded random order, so the buffer only
  has to mix neighbours). With the same shards, seed, buffer size (and TensorFlow version) the order is the same
  on every run, so a resume is exact here too: the records already trained on are skipped before decoding
  (read, not decoded). Rewriting the shards (another --seed or --shards) changes the order.

Each image is mirrored with probability 1/2, decided by (seed, epoch, the sample's index): the same sample gets
the same flip in an epoch whatever the batch size, the number of workers or a resume. Workers of a multi-worker
run take every num_workers-th sample of the same order (after the resume skip, before decoding).

Yields (real, y_src): real (B, S, S, 3) float32 in [-1, 1]; y_src (B, 17) float32 on the networks' [0, 1] scale.
"""
import numpy as np
import tensorflow as tf

from data.scales import to_model_aus, to_model_pixels
from data.shards import ShardSet, parse_record

AUTOTUNE = tf.data.AUTOTUNE
SHUFFLE_BUFFER = 10_000  # records held for shuffling shards: ~80 MB of 128 x 128 JPEGs
READERS = 16             # shard files read at a time (interleaved); fixed, so that the order is reproducible


def _decode_file(path, image_size):
    """One image file (JPEG/PNG/BMP/GIF, gray or colour, 8 or 16 bit) -> (S, S, 3) uint8."""
    image = tf.io.decode_image(tf.io.read_file(path), channels=3, dtype=tf.uint8, expand_animations=False)
    image.set_shape([None, None, 3])
    return _resize(image, image_size)


def _resize(image, image_size):
    shape = tf.shape(image)

    def resized():
        return _to_uint8(tf.image.resize(image, [image_size, image_size], method="area", antialias=True))

    same = tf.logical_and(tf.equal(shape[0], image_size), tf.equal(shape[1], image_size))
    return tf.cond(same, lambda: image, resized)


def _parse_record(record, image_size, stored_size):
    """One record of the shards -> (image (S, S, 3) uint8, aus (17,) on 0-1, index). When the shards' image size
    `stored_size` is image_size, no resize is built into the graph at all."""
    image, aus, index, _ = parse_record(record)
    if stored_size == image_size:
        image = tf.ensure_shape(image, [image_size, image_size, 3])
    else:
        image.set_shape([None, None, 3])
        image = _resize(image, image_size)
    return image, to_model_aus(aus), index


def _shard_records(source, epoch, seed, shuffle, shuffle_buffer):
    """The serialized records of one epoch, in its deterministic order (see the module docstring)."""
    files = list(source.files)
    if shuffle:
        files = [files[i] for i in np.random.default_rng([seed, epoch]).permutation(len(files))]
    readers = min(READERS, len(files)) if shuffle else 1
    parallel = dict(num_parallel_calls=AUTOTUNE, deterministic=True) if readers > 1 else {}
    records = tf.data.Dataset.from_tensor_slices(files).interleave(
        tf.data.TFRecordDataset, cycle_length=readers, block_length=1, **parallel)
    if shuffle:
        records = records.shuffle(shuffle_buffer, seed=seed * 100003 + epoch, reshuffle_each_iteration=False)
    return records


def _to_uint8(pixels):
    return tf.cast(tf.clip_by_value(tf.round(pixels), 0, 255), tf.uint8)


def make_dataset(source, batch_size, image_size, epoch=0, skip_batches=0, seed=0, shuffle=True, flip=True,
                 repeat=False, num_workers=1, worker_index=0, shuffle_buffer=SHUFFLE_BUFFER):
    """The batches of one epoch of `source` (a data.faceset.FaceSet or data.shards.ShardSet).

    epoch, seed: fix the order (and the flips) of this epoch. skip_batches: batches already done (resume).
    repeat: cycle forever (for fixed-size sample batches). num_workers / worker_index: in a multi-worker run
    every worker takes its share (every num_workers-th sample) of the same epoch order, in batches of
    batch_size; one step of the run consumes num_workers * batch_size samples, and skip_batches counts steps.
    shuffle_buffer: records held for shuffling TFRecord shards (ignored for other sources).
    """
    n = len(source)
    if n < batch_size:
        raise ValueError(f"the dataset has {n} samples, fewer than one batch of {batch_size}")
    skip = skip_batches * batch_size * num_workers

    def share(items):  # resume, this worker's share, repeat: before decoding, so skipped samples cost no decode
        items = items.skip(skip)
        if num_workers > 1:
            items = items.shard(num_workers, worker_index)
        return items.repeat() if repeat else items

    def flipped(image, aus, index):
        return (_maybe_flip(image, index, seed, epoch) if flip else image), aus, index

    if isinstance(source, ShardSet):
        records = share(_shard_records(source, epoch, seed, shuffle, shuffle_buffer))
        samples = records.map(lambda r: flipped(*_parse_record(r, image_size, source.image_size)),
                              num_parallel_calls=AUTOTUNE, deterministic=True)
        # A record that cannot be decoded is left out rather than ending a long run mid-epoch.
        batches = samples.ignore_errors(log_warning=True).batch(batch_size, drop_remainder=True)
    else:
        indices = tf.data.Dataset.range(n)
        if shuffle:
            indices = indices.shuffle(n, seed=seed * 100003 + epoch, reshuffle_each_iteration=False)
        indices = share(indices)
        aus = to_model_aus(source.aus)  # (N, 17), small
        if source.images is not None:
            batches = indices.batch(batch_size, drop_remainder=True).map(
                _memory_batch(source.images, aus, batch_size, image_size, flip and (seed, epoch)),
                num_parallel_calls=AUTOTUNE)
        else:
            paths = tf.constant([str(p) for p in source.paths])
            samples = indices.map(lambda i: flipped(_decode_file(paths[i], image_size), aus[i], i),
                                  num_parallel_calls=AUTOTUNE, deterministic=True)
            batches = samples.ignore_errors(log_warning=True).batch(batch_size, drop_remainder=True)
    return batches.map(lambda images, y_src, _: (to_model_pixels(images), y_src),
                       num_parallel_calls=AUTOTUNE).prefetch(AUTOTUNE)


def _maybe_flip(image, index, seed, epoch):
    """Mirror one (S, S, 3) image with probability 1/2, reproducibly from (seed, epoch, the sample's index).

    Per image inside the parallel decode map: flipping whole batches with tf.where cost more than decoding."""
    key = tf.stack([tf.constant(seed * 1009 + epoch, tf.int64), tf.cast(index, tf.int64)])
    coin = tf.random.stateless_uniform([], key)
    return tf.cond(coin < 0.5, lambda: tf.reverse(image, axis=[1]), lambda: image)


def _memory_batch(images, aus, batch_size, image_size, flip_key):
    """indices (B,) -> (uint8 images (B, S, S, 3), y_src, indices) from an in-memory image array."""
    shape = [batch_size, *images.shape[1:]]

    def gather(idx):
        batch = tf.ensure_shape(tf.numpy_function(lambda i: images[i], [idx], tf.uint8), shape)
        if tuple(shape[1:3]) != (image_size, image_size):  # e.g. a sample batch read from 128-pixel shards
            batch = _to_uint8(tf.image.resize(batch, [image_size, image_size], method="area", antialias=True))
        if flip_key:
            batch = tf.map_fn(lambda t: _maybe_flip(t[0], t[1], *flip_key), (batch, idx),
                              fn_output_signature=tf.uint8)
        return batch, tf.gather(aus, idx), idx
    return gather


def steps_per_epoch(source, batch_size):
    """Full batches per epoch (the last partial batch is dropped)."""
    return len(source) // batch_size
