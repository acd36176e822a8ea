"""The one dataset interface that the synthetic faces and every real-data reader produce.

A `FaceSource` is a list of samples: each is an image (either held in memory or a file path) and its 17 AU
intensities on OpenFace's 0-5 scale. `data.pipeline.make_dataset` turns any FaceSource into the `tf.data`
pipeline that training reads, so synthetic and real data go through the same code.
"""
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from data.constants import NUM_AUS


@dataclass
class FaceSource:
    """Images and their AUs.

    Exactly one of `images` and `paths` is set.
    images: uint8 array (N, H, W, 3), RGB, when the data lives in memory (the synthetic faces).
    paths:  N image file paths (JPEG or PNG, any size: the pipeline resizes to the training size).
    aus:    float32 array (N, 17), AU intensities on the 0-5 scale, order `data.constants.AU_NAMES`.
    ids:    N sample names, for messages and manifests.
    name:   where the data came from, for logs.
    """

    aus: np.ndarray
    ids: Sequence[str]
    images: Optional[np.ndarray] = None
    paths: Optional[Sequence[str]] = None
    name: str = ""

    def __post_init__(self):
        self.aus = np.asarray(self.aus, dtype=np.float32)
        if (self.images is None) == (self.paths is None):
            raise ValueError("FaceSource takes exactly one of images and paths")
        n = len(self.images) if self.images is not None else len(self.paths)
        if self.aus.shape != (n, NUM_AUS):
            raise ValueError(f"FaceSource: aus must be ({n}, {NUM_AUS}), got {self.aus.shape}")
        if len(self.ids) != n:
            raise ValueError(f"FaceSource: {len(self.ids)} ids for {n} samples")
        if self.images is not None and (self.images.dtype != np.uint8 or self.images.ndim != 4
                                        or self.images.shape[-1] != 3):
            raise ValueError(f"FaceSource: images must be uint8 (N, H, W, 3), got {self.images.dtype} "
                             f"{self.images.shape}")

    def __len__(self):
        return len(self.aus)


@dataclass
class ShardSource:
    """Samples in TFRecord shards written by `python -m data.tfrecords`, read and decoded only by the pipeline.

    files:      the shard files, in the order they were written.
    counts:     records per shard.
    image_size: the side of the (square) images stored in the records.
    name:       where the data came from, for logs.
    """

    files: Sequence[str]
    counts: Sequence[int]
    image_size: int
    name: str = ""

    def __len__(self):
        return int(sum(self.counts))


def subset(source, indices):
    """The samples of `source` at `indices`, as a new FaceSource (of a ShardSource: read into memory)."""
    indices = list(indices)
    if isinstance(source, ShardSource):
        from data.tfrecords import read_records
        return read_records(source, indices)
    return FaceSource(
        aus=source.aus[indices], ids=[source.ids[i] for i in indices],
        images=source.images[indices] if source.images is not None else None,
        paths=[source.paths[i] for i in indices] if source.paths is not None else None, name=source.name)
