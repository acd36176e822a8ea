"""Sharded TFRecords for large data sets: written once, then read by training as fast as it can use them.

    python -m data.tfrecords --data DATASET --out SHARDS_DIR --shards 64 [--size 128] [--split train]
    python train.py --data SHARDS_DIR ...

The data set is loaded and checked first (`data.dataset.load_dataset`: bad samples are left out and reported),
then every image is stored at `--size` x `--size` and the shards are written (data/shards.py, the format: files
already of that size are copied byte for byte, others resized and encoded as JPEG with `--quality`; a seeded
order spreads the samples over the shards). SHARDS_DIR/tfrecords.json indexes the shards (their files, record
counts and byte sizes); a shard that is missing or changed since is an error when the folder is loaded. The
folder is built under a temporary name beside SHARDS_DIR and renamed into place when complete: an interrupted
or failed run leaves no SHARDS_DIR, and the next run removes what a killed one left.
"""
import sys

from data.dataset import load_dataset
from data.shards import ShardSet, write_shards
from utils.cli import ArgumentParser
from utils.errors import UserError


def main(argv=None):
    parser = ArgumentParser(prog="python -m data.tfrecords", description=__doc__.split("\n\n")[0], epilog=__doc__)
    data = parser.add_argument_group("data set")
    data.add_argument("--data", required=True, metavar="PATH",
                      help="the data set to convert (any layout train.py reads)")
    data.add_argument("--split", default="train", metavar="NAME", help="which split to write")
    data.add_argument("--allow-pickle", action="store_true", help="read aus_openface.pkl (restricted unpickler)")
    data.add_argument("--min-confidence", type=float, default=None, metavar="X",
                      help="OpenFace folders: skip face rows with lower confidence")
    data.add_argument("--strict", action="store_true", help="stop when the check finds any problem")
    shards = parser.add_argument_group("shards")
    shards.add_argument("--out", required=True, metavar="DIR", help="the new folder for the shards")
    shards.add_argument("--shards", type=int, required=True, metavar="N",
                        help="number of files, 1 to the number of samples; aim for 100-200 MB each (about 15k "
                             "faces of 128 px)")
    shards.add_argument("--size", type=int, default=128, metavar="N", help="side of the stored images, at least 8")
    shards.add_argument("--quality", type=int, default=95, metavar="N", help="JPEG quality of resized images, 1-100")
    shards.add_argument("--seed", type=int, default=0, metavar="N", help="seed of the order over the shards")
    shards.add_argument("--workers", type=int, default=4, metavar="N", help="threads that read and encode images")
    args = parser.parse_args(argv)
    if args.size < 8:
        raise UserError("--size", f"{args.size} is less than 8 pixels")
    if not 1 <= args.quality <= 100:
        raise UserError("--quality", f"{args.quality} is not a JPEG quality between 1 and 100")
    faces = load_dataset(args.data, args.split, args.allow_pickle, args.min_confidence, args.size, args.strict,
                         stream=sys.stdout)
    if isinstance(faces, ShardSet):
        raise UserError(args.data, "is already a folder of shards")
    if not 1 <= args.shards <= len(faces):  # before the slow TensorFlow import
        raise UserError(args.out, f"--shards must be between 1 and the number of samples ({len(faces)})")
    from utils.cli import quiet_tensorflow
    quiet_tensorflow()
    index = write_shards(faces, args.out, args.shards, args.size, args.quality, args.seed, args.split,
                         args.workers)
    total = sum(e["bytes"] for e in index["shards"])
    print(f"wrote {index['count']:,} samples in {args.shards} shards ({total / 2**20:,.1f} MB) to {args.out}; "
          f"train with: python train.py --data {args.out}")
    return 0


if __name__ == "__main__":
    from utils.cli import run_main
    run_main(main)
