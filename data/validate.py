"""Checking a data set before training: every image and every AU row, with one summary.

    python -m data.validate DATASET [--split train] [--image-size 128] [--strict] [--report problems.csv]

What is checked (data/dataset.py, `load_dataset`), and what happens to a sample that fails
(`data.problems.Problems` collects them all):

| problem                                                         | without --strict | with --strict |
|-----------------------------------------------------------------|------------------|---------------|
| image missing, empty, not an image, truncated or corrupt        | left out         | stop          |
| image over 50 megapixels by its header (not decoded)            | left out         | stop          |
| AU row with an empty cell, NaN, negative or > 5 values          | left out         | stop          |
| split id with no image or no AUs; no usable OpenFace row        | left out         | stop          |
| the same image twice (same bytes, or the same path)             | first one kept   | stop          |
| duplicate ids in a split file, the AU file or a manifest        | first one kept   | stop          |
| manifest without ids: one file name in two folders              | kept (warning)   | stop          |
| an id in two split files                                        | kept (warning)   | stop          |
| image not S x S (`--image-size`)                                | kept (warning: the pipeline resizes it) | stop |

Nothing usable left is an error either way. Images are checked from their bytes in parallel threads
(200,000 images of 128 px in 15 s on 2 cores), so the pipeline never meets a file it cannot read.
"""
import sys

from data.dataset import load_dataset
from data.problems import Problems, write_problems_csv
from utils.cli import ArgumentParser


def main(argv=None):
    parser = ArgumentParser(prog="python -m data.validate", description=__doc__.split("\n\n")[0], epilog=__doc__)
    data = parser.add_argument_group("data set")
    data.add_argument("data", help="a data set: official layout folder, manifest, OpenFace folder or shards")
    data.add_argument("--split", default="train", metavar="NAME", help="which split to check")
    data.add_argument("--allow-pickle", action="store_true", help="read aus_openface.pkl (restricted unpickler)")
    data.add_argument("--min-confidence", type=float, default=None, metavar="X",
                      help="OpenFace folders: skip face rows with lower confidence")
    checks = parser.add_argument_group("checks and report")
    checks.add_argument("--image-size", type=int, default=128, metavar="N",
                        help="warn about images of another size; 0 to skip")
    checks.add_argument("--strict", action="store_true", help="exit with an error when anything is wrong")
    checks.add_argument("--report", default=None, metavar="CSV",
                        help="write every problem to this CSV (kind,reason,sample)")
    checks.add_argument("--workers", type=int, default=8, metavar="N", help="threads that read images")
    args = parser.parse_args(argv)
    problems = Problems()
    try:
        load_dataset(args.data, args.split, args.allow_pickle, args.min_confidence, args.image_size or None,
                     args.strict, args.workers, sys.stdout, problems)
    finally:
        if args.report and problems:
            write_problems_csv(args.report, problems)
    return 0


if __name__ == "__main__":
    from utils.cli import run_main
    run_main(main)
