"""Sharded TFRecords for large data sets: written once, then read by training as fast as it can use them.

    python -m data.tfrecords --data DATASET --out SHARDS_DIR --shards 64 [--size 128] [--split train]
    python train.py --data SHARDS_DIR ...

The data set is loaded and checked first (`data.validate.load_checked`: bad samples are left out and reported),
then every image is stored at `--size` x `--size`: files already of that size (JPEG or PNG) are copied byte for
byte, others are resized (area averaging) and encoded as JPEG (`--quality`). The samples are spread over the
shards in a seeded random order, so each shard is a random sample of the data and the training pipeline's
bounded shuffle buffer mixes well (data/pipeline.py). SHARDS_DIR/tfrecords.json indexes the shards (their files,
record counts and byte sizes); a shard that is missing or changed since is an error when the folder is loaded.

Each record is a tf.train.Example: `image` (encoded bytes), `aus` (17 floats, 0-5, order AU01 ... AU45),
`index` (the sample's position in the loaded data set) and `id`. The folder is built under a temporary name beside
SHARDS_DIR and renamed into place when complete, tfrecords.json written last (utils.files.replace_folder): an
interrupted or failed run leaves no SHARDS_DIR, and the next run removes what a killed one left.
"""
import argparse
import json
import logging
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List

import cv2
import numpy as np

from data.constants import AU_NAMES
from data.images import resize_square
from data.progress import ProgressBar
from data.readers import SHARDS_INDEX
from data.source import FaceSource, ShardSource
from data.images import image_size_from_header
from utils.errors import UserError
from utils.files import atomic_write_text, replace_folder

logger = logging.getLogger(__name__)
FORMAT = "ganimation-tfrecords-1"
_BATCH = 512  # samples encoded per thread-pool round: bounds the memory held for the writer


# ----------------------------------------------------------------------------------------------- writing


def _encode_file(path, size, quality) -> bytes:
    """An image file -> encoded bytes of a size x size image: the file itself when it already is one."""
    data = np.fromfile(path, dtype=np.uint8)
    head = bytes(data[:4])
    if image_size_from_header(data) == (size, size) and head.startswith((b"\xff\xd8\xff", b"\x89PNG")):
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


def _encoder(source: FaceSource, size, quality):
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


def write_shards(source: FaceSource, out_dir, shards: int, size: int = 128, quality: int = 95, seed: int = 0,
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
        with ProgressBar(n, f"writing {shards} shards") as bar, ThreadPoolExecutor(max(1, workers)) as pool:
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


def load_shards(folder, split=None) -> ShardSource:
    """A folder written by write_shards -> ShardSource. Every shard must be there, with the size it was written
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
    return ShardSource(files=files, counts=counts, image_size=index["image_size"],
                       name=f"TFRecord shards {folder} ({len(files)} files)")


def read_records(source: ShardSource, positions) -> FaceSource:
    """The records at `positions` (0-based, in shard order) decoded into memory, as a FaceSource."""
    import tensorflow as tf
    from data.pipeline import RECORD_FEATURES

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
            features = tf.io.parse_single_example(record, RECORD_FEATURES)
            image = tf.io.decode_image(features["image"], channels=3, expand_animations=False).numpy()
            found[start + int(i)] = (image, features["aus"].numpy(), features["id"].numpy().decode("utf-8"))
    images = np.stack([found[p][0] for p in positions])
    return FaceSource(aus=np.stack([found[p][1] for p in positions]), ids=[found[p][2] for p in positions],
                      images=images, name=source.name)


# ----------------------------------------------------------------------------------------------- command line


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m data.tfrecords", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--data", required=True, help="the data set to convert (any layout train.py reads)")
    parser.add_argument("--out", required=True, help="the new folder for the shards")
    parser.add_argument("--shards", type=int, required=True,
                        help="number of files; aim for 100-200 MB each (about 15k faces of 128 px)")
    parser.add_argument("--size", type=int, default=128, help="side of the stored images (default: 128)")
    parser.add_argument("--split", default="train", help="which split to write (default: train)")
    parser.add_argument("--quality", type=int, default=95, help="JPEG quality of resized images (default: 95)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the order over the shards (default: 0)")
    parser.add_argument("--allow-pickle", action="store_true", help="read aus_openface.pkl (restricted unpickler)")
    parser.add_argument("--min-confidence", type=float, default=None,
                        help="OpenFace folders: skip face rows with lower confidence")
    parser.add_argument("--strict", action="store_true", help="stop when the check finds any problem")
    parser.add_argument("--workers", type=int, default=4, help="threads that read and encode images (default: 4)")
    args = parser.parse_args(argv)
    if args.size < 8 or not 1 <= args.quality <= 100:
        raise UserError(None, "--size must be at least 8 and --quality between 1 and 100")
    from data.validate import load_checked
    source = load_checked(args.data, args.split, args.allow_pickle, args.min_confidence, args.size, args.strict,
                          stream=sys.stdout)
    if isinstance(source, ShardSource):
        raise UserError(args.data, "is already a folder of shards")
    if not 1 <= args.shards <= len(source):  # before the slow TensorFlow import
        raise UserError(args.out, f"--shards must be between 1 and the number of samples ({len(source)})")
    from utils.cli import quiet_tensorflow
    quiet_tensorflow()
    index = write_shards(source, args.out, args.shards, args.size, args.quality, args.seed, args.split,
                         args.workers)
    total = sum(e["bytes"] for e in index["shards"])
    print(f"wrote {index['count']:,} samples in {args.shards} shards ({total / 2**20:,.1f} MB) to {args.out}; "
          f"train with: python train.py --data {args.out}")
    return 0


if __name__ == "__main__":
    from utils.cli import run_main
    run_main(main)
