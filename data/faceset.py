"""The one data set interface that the synthetic faces and every real-data reader produce.

A `FaceSet` is a list of samples: each is an image (either held in memory or a file path) and its 17 AU
intensities on OpenFace's 0-5 scale. `data.pipeline.make_dataset` turns any FaceSet (or TFRecord shards,
data/shards.py: ShardSet) into the `tf.data` pipeline that training reads, so synthetic and real data go
through the same code.
"""
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from data.constants import NUM_AUS


@dataclass
class FaceSet:
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
            raise ValueError("FaceSet takes exactly one of images and paths")
        n = len(self.images) if self.images is not None else len(self.paths)
        if self.aus.shape != (n, NUM_AUS):
            raise ValueError(f"FaceSet: aus must be ({n}, {NUM_AUS}), got {self.aus.shape}")
        if len(self.ids) != n:
            raise ValueError(f"FaceSet: {len(self.ids)} ids for {n} samples")
        if self.images is not None and (self.images.dtype != np.uint8 or self.images.ndim != 4
                                        or self.images.shape[-1] != 3):
            raise ValueError(f"FaceSet: images must be uint8 (N, H, W, 3), got {self.images.dtype} "
                             f"{self.images.shape}")

    def __len__(self):
        return len(self.aus)

    def subset(self, indices):
        """The samples at `indices`, as a new FaceSet."""
        indices = list(indices)
        return FaceSet(aus=self.aus[indices], ids=[self.ids[i] for i in indices],
                       images=self.images[indices] if self.images is not None else None,
                       paths=[self.paths[i] for i in indices] if self.paths is not None else None, name=self.name)
