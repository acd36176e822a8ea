"""TFRecord shards for large data sets, all of the format in one place: the record schema, the writer and the
reader. Written once (`python -m data.tfrecords`, data/tfrecords.py), then read by training as fast as it can use
them (data/pipeline.py parses the records with `parse_record`).

    write_shards(faces, "SHARDS_DIR", shards=64, size=128)    # a checked FaceSet (data.dataset.load_dataset)
    shards = load_shards("SHARDS_DIR")                         # -> ShardSet; python train.py --data SHARDS_DIR

Every image is stored at `size` x `size`: files already of that size (JPEG or PNG) are copied byte for
byte, others are resized (area averaging) and encoded as JPEG (`quality`). The samples are spread over the
shards in a seeded random order, so each shard is a random sample of the data and the training pipeline's
bounded shuffle buffer mixes well (data/pipeline.py). SHARDS_DIR/tfrecords.json indexes the shards (their files,
record counts and byte sizes); a shard that is missing or changed since is an error when the folder is loaded.

Each record is a tf.train.Example: `image` (encoded bytes), `aus` (17 floats, 0-5, order AU01 ... AU45),
`index` (the sample's position in the loaded data set) and `id`. The folder is built under a temporary name beside
SHARDS_DIR and renamed into place when complete, tfrecords.json written last (utils.files.replace_folder): an
interrupted or failed run leaves no SHARDS_DIR, and the next run removes what a killed one left.
"""
import json
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Dict, List, Sequence

import cv2
import numpy as np

from data.constants import AU_NAMES, NUM_AUS
from data.faceset import FaceSet
from data.images import image_format, image_size_from_header, resize_square
from utils.errors import UserError
from utils.files import atomic_write_text, replace_folder
from utils.progress import progress_bar

logger = logging.getLogger(__name__)
FORMAT = "ganimation-tfrecords-1"
SHARDS_INDEX = "tfrecords.json"  # the index of a folder of shards: the completion marker, what the readers look for
_BATCH = 512  # samples encoded per thread-pool round: bounds the memory held for the writer


def record_features():
    """The schema of a record (a tf.train.Example), for tf.io.parse_single_example."""
    import tensorflow as tf
    return {
        "image": tf.io.FixedLenFeature([], tf.string),      # encoded JPEG or PNG, image_size x image_size
        "aus": tf.io.FixedLenFeature([NUM_AUS], tf.float32),  # 0-5
        "index": tf.io.FixedLenFeature([], tf.int64),        # position in the data set the shards were written from
        "id": tf.io.FixedLenFeature([], tf.string),
    }


@dataclass
class ShardSet:
    """Samples in TFRecord shards written by `write_shards`, read and decoded only by the pipeline.

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

    def subset(self, positions):
        """The records at `positions` (0-based, in shard order), decoded into memory, as a FaceSet."""
        return read_records(self, positions)


# ----------------------------------------------------------------------------------------------- writing


def _encode_file(path, size, quality) -> bytes:
    """An image file -> encoded bytes of a size x size image: the file itself when it already is one."""
    data = np.fromfile(path, dtype=np.uint8)
    if image_size_from_header(data) == (size, size) and image_format(data) in ("jpeg", "png"):
        return data.tobytes()
    # The EXIF orientation is ignored, as TensorFlow's decoder (the folder pipeline) ignores it.
    image = cv2.imdecode(data, cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    if image is None:
        raise UserError(path, "is not a readable image (it changed since it was checked?)")
    return _encode_array(resize_square(image, size), quality)


def _encode_array(image_bgr, quality) -> bytes:
    ok, buf = cv2.imencode(".jpg", image_bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()


def _encoder(source: FaceSet, size, quality):
    """index -> encoded image bytes, for files or in-memory (RGB) images."""
    if source.images is not None:
        return lambda i: _encode_array(resize_square(cv2.cvtColor(source.images[i], cv2.COLOR_RGB2BGR), size),
                                       quality)
    return lambda i: _encode_file(source.paths[i], size, quality)


def serialize_example(image_bytes, aus, index, sample_id) -> bytes:
    import tensorflow as tf

    feature = {
        "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[image_bytes])),
        "aus": tf.train.Feature(float_list=tf.train.FloatList(value=np.asarray(aus, np.float32).tolist())),
        "index": tf.train.Feature(int64_list=tf.train.Int64List(value=[int(index)])),
        "id": tf.train.Feature(bytes_list=tf.train.BytesList(value=[str(sample_id).encode("utf-8")])),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def _shard_name(prefix, k, shards):
    return f"{prefix}-{k:05d}-of-{shards:05d}.tfrecord"


def write_shards(source: FaceSet, out_dir, shards: int, size: int = 128, quality: int = 95, seed: int = 0,
                 split=None, workers: int = 4) -> Dict:
    """Write `source` as `shards` TFRecord files plus tfrecords.json in out_dir (which must not exist or be
    empty). Returns the index. The folder appears only when complete."""
    import tensorflow as tf

    out_dir = os.path.abspath(os.fspath(out_dir))
    n = len(source)
    if shards < 1 or shards > n:
        raise UserError(out_dir, f"--shards must be between 1 and the number of samples ({n}), got {shards}")
    if os.path.exists(out_dir) and (not os.path.isdir(out_dir) or os.listdir(out_dir)):
        raise UserError(out_dir, "exists and is not an empty folder: choose a new folder for the shards")
    with replace_folder(out_dir, SHARDS_INDEX) as tmp:
        order = np.random.default_rng(seed).permutation(n)  # spreads the samples over the shards
        encode = _encoder(source, size, quality)
        prefix = split or "data"
        entries = []
        with progress_bar(n, f"writing {shards} shards") as bar, ThreadPoolExecutor(max(1, workers)) as pool:
            for k, part in enumerate(np.array_split(order, shards)):
                name = _shard_name(prefix, k, shards)
                with tf.io.TFRecordWriter(os.path.join(tmp, name)) as writer:
                    for start in range(0, len(part), _BATCH):
                        chunk = part[start:start + _BATCH]
                        for i, data in zip(chunk, pool.map(encode, chunk)):
                            writer.write(serialize_example(data, source.aus[i], i, source.ids[i]))
                        bar.update(len(chunk))
                entries.append({"file": name, "count": int(len(part)),
                                "bytes": os.path.getsize(os.path.join(tmp, name))})
        index = {"format": FORMAT, "image_size": int(size), "count": int(n), "split": split,
                 "source": source.name, "seed": int(seed), "au_names": list(AU_NAMES), "shards": entries}
        atomic_write_text(os.path.join(tmp, SHARDS_INDEX), json.dumps(index, indent=1))
    return index


# ----------------------------------------------------------------------------------------------- reading


def _read_index(folder) -> Dict:
    path = os.path.join(folder, SHARDS_INDEX)
    try:
        with open(path) as fh:
            index = json.load(fh)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(path, f"not a readable shard index ({exc})") from None
    if not isinstance(index, dict) or index.get("format") != FORMAT:
        raise UserError(path, f"not a shard index written by python -m data.tfrecords (format {FORMAT})")
    if index.get("au_names") != list(AU_NAMES):
        raise UserError(path, f"the shards hold other AUs than {', '.join(AU_NAMES)}")
    if not isinstance(index.get("image_size"), int) or not isinstance(index.get("shards"), list) \
            or not index["shards"]:
        raise UserError(path, "the index has no image_size or no shards")
    return index


def load_shards(folder, split=None) -> ShardSet:
    """A folder written by write_shards -> ShardSet. Every shard must be there, with the size it was written
    with (a copy cut short would silently lose samples otherwise)."""
    folder = os.path.abspath(os.fspath(folder))
    index = _read_index(folder)
    files, counts = [], []
    for entry in index["shards"]:
        path = os.path.join(folder, os.path.basename(str(entry.get("file", ""))))
        if not os.path.isfile(path):
            raise UserError(path, "shard listed in tfrecords.json is missing: copy it back or write the shards anew")
        if os.path.getsize(path) != entry.get("bytes"):
            raise UserError(path, f"shard is {os.path.getsize(path):,} bytes, but was written with "
                                  f"{entry.get('bytes'):,}: copy it again or write the shards anew")
        files.append(path)
        counts.append(int(entry["count"]))
    if split is not None and index.get("split") not in (None, split):
        logger.warning("%s: these shards hold split %r, not %r", folder, index["split"], split)
    return ShardSet(files=files, counts=counts, image_size=index["image_size"],
                       name=f"TFRecord shards {folder} ({len(files)} files)")


def read_records(source: ShardSet, positions) -> FaceSet:
    """The records at `positions` (0-based, in shard order) decoded into memory, as a FaceSet."""
    import tensorflow as tf

    positions = [int(p) for p in positions]
    ends = np.cumsum(source.counts)
    wanted: Dict[int, List[int]] = {}
    for p in sorted(set(positions)):
        if not 0 <= p < ends[-1]:
            raise IndexError(f"record {p} of {ends[-1]}")
        shard = int(np.searchsorted(ends, p, side="right"))
        wanted.setdefault(shard, []).append(p - (int(ends[shard - 1]) if shard else 0))
    found = {}
    for shard, offsets in wanted.items():
        start = int(ends[shard - 1]) if shard else 0
        records = tf.data.TFRecordDataset(source.files[shard]).take(max(offsets) + 1).enumerate()
        keep = tf.constant(offsets, tf.int64)
        records = records.filter(lambda i, r: tf.reduce_any(tf.equal(i, keep)))
        for i, record in records:
            image, aus, _, sample_id = parse_record(record)
            found[start + int(i)] = (image.numpy(), aus.numpy(), sample_id.numpy().decode("utf-8"))
    images = np.stack([found[p][0] for p in positions])
    return FaceSet(aus=np.stack([found[p][1] for p in positions]), ids=[found[p][2] for p in positions],
                      images=images, name=source.name)



def parse_record(record):
    """One serialized record -> (image uint8 (H, W, 3), aus (17,) on 0-5, index, id), as tensors."""
    import tensorflow as tf
    features = tf.io.parse_single_example(record, record_features())
    image = tf.io.decode_image(features["image"], channels=3, dtype=tf.uint8, expand_animations=False)
    return image, features["aus"], features["index"], features["id"]
