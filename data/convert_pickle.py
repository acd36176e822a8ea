"""Convert the official GANimation `aus_openface.pkl` to a plain `aus.csv` (id,AU01,...,AU45).

    python -m data.convert_pickle --allow-pickle DATASET/aus_openface.pkl            # writes DATASET/aus.csv
    python -m data.convert_pickle --allow-pickle aus_openface.pkl --out my_aus.csv

Loading a pickle can run code, so the file is read only with --allow-pickle, and then through the restricted
unpickler of data/au_pickle.py, which can build nothing but a dict of names to numbers (anything else is refused
before it runs). The CSV holds the same ids in the same order; the readers prefer it to the pickle when both
are in a data set folder, so later runs need no --allow-pickle.
"""
import os

from data.aus import read_au_pickle, write_au_csv
from utils.cli import ArgumentParser
from utils.errors import UserError


def convert(pickle_path, out_path, allow_pickle=False, overwrite=False) -> int:
    """Write the pickle's AUs to out_path; returns the number of ids."""
    if os.path.exists(out_path) and not overwrite:
        raise UserError(out_path, "exists already (pass --force to replace it)")
    table = read_au_pickle(pickle_path, allow_pickle=allow_pickle)
    write_au_csv(out_path, list(table.values()), ids=list(table))
    return len(table)


def main(argv=None):
    parser = ArgumentParser(prog="python -m data.convert_pickle", description=__doc__.split("\n\n")[0], epilog=__doc__)
    reading = parser.add_argument_group("input")
    reading.add_argument("pickle", help="the aus_openface.pkl to convert")
    reading.add_argument("--allow-pickle", action="store_true", help="confirm that the pickle may be read")
    writing = parser.add_argument_group("output")
    writing.add_argument("--out", default=None, metavar="CSV",
                         help="the CSV to write (default: aus.csv beside the pickle)")
    writing.add_argument("--force", action="store_true", help="replace --out if it exists")
    args = parser.parse_args(argv)
    out = args.out or os.path.join(os.path.dirname(os.path.abspath(args.pickle)), "aus.csv")
    n = convert(args.pickle, out, args.allow_pickle, args.force)
    print(f"wrote {n:,} ids to {out}")
    return 0


if __name__ == "__main__":
    from utils.cli import run_main
    run_main(main)
