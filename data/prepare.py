"""From a folder of photos to a training set of aligned face crops.

    python -m data.prepare --photos PHOTOS --out DATASET [--size 128] [--largest | --all-faces] [--aus CSV_DIR]
    python -m data.prepare --out DATASET --aus CSV_DIR        # join OpenFace AUs into a prepared DATASET later

1. Every image under PHOTOS (sub-folders included, in sorted order) is searched for faces with MTCNN
   (data/faces.py). A photo with one face gives one crop, aligned on the eyes, `--size` pixels square, with
   `--margin`. A photo with several faces is skipped unless `--largest` (the largest face) or `--all-faces`
   (one crop each, `<name>_face<k>`, largest first) is given; photos with no face or that cannot be read are
   skipped. All of them are listed in DATASET/report.csv and summarised on the screen.
2. DATASET/imgs/<name>.jpg are the crops, where <name> is the photo's path under PHOTOS without extension, with
   `/` written as `__`. DATASET/crops.csv lists each crop with its split, photo, detection score and box.
   The split is by photo (the faces of one photo stay together): `--test-fraction` of the photos, drawn with
   `--seed`, go to `test`.
3. The AUs: with `--aus CSV_DIR`, the OpenFace CSV of each crop (`CSV_DIR/<name>.csv`, as OpenFace's
   FaceLandmarkImg names them) is read and DATASET/manifest.csv is written (path, split, AU01 ... AU45): the
   data set is then ready for `python train.py --data DATASET`. Without AUs there is no manifest yet: run
   OpenFace on DATASET/imgs, then join its output with the second form of the command (README, "Preparing
   photos").

The same photos and flags give the same files. The data set folder is built under a temporary name beside it and
renamed into place when complete, crops.csv written last (utils.files.replace_folder), so a failed or killed run
leaves no DATASET (and the next run removes what a killed one left); the join rewrites manifest.csv atomically.
"""
import csv
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List

import numpy as np

from data.aus import NoRows
from data.constants import AU_NAMES
from data.images import IMAGE_EXTENSIONS, list_images, read_image, write_image
from data.problems import Problems, write_problems_csv
from utils.cli import ArgumentParser
from utils.errors import UserError
from utils.files import csv_text
from utils.progress import progress_bar

CROPS = "crops.csv"
MANIFEST = "manifest.csv"
REPORT = "report.csv"
NO_FACE = "no face found"
SEVERAL = "several faces: skipped (pass --largest or --all-faces)"
LARGEST = "several faces: the largest was cropped"
UNREADABLE = "photo cannot be read"
NO_CSV = "no OpenFace CSV for the crop"
NO_ROW = "no usable face row in its OpenFace CSV"
REPORT_AUS = "aus_report.csv"
OPENFACE_HELP = ("next: get the crops' AUs with OpenFace,  FaceLandmarkImg -fdir {imgs} -out_dir {csvs} -aus  "
                 "then join them:  python -m data.prepare --out {out} --aus {csvs}")


# ----------------------------------------------------------------------------------------------- photos


def crop_name(relative_photo: str) -> str:
    return os.path.splitext(relative_photo)[0].replace(os.sep, "__").replace("/", "__")


def _read_ahead(read, items, ahead=4):
    """(item, read(item) or the UserError it raised) in order, reading up to `ahead` items in threads."""
    with ThreadPoolExecutor(2) as pool:
        def submit(item):
            return pool.submit(lambda: _try(read, item))
        pending = [submit(item) for item in items[:ahead]]
        for k, item in enumerate(items):
            result = pending[k].result()
            pending[k] = None  # let the decoded photo go once used
            if k + ahead < len(items):
                pending.append(submit(items[k + ahead]))
            yield item, result


def _try(func, arg):
    try:
        return func(arg)
    except UserError as exc:
        return exc


def _faces_to_crop(faces, mode, photo, problems):
    """The faces to crop, by --largest / --all-faces / neither; records photos that give none."""
    if not faces:
        problems.skip(NO_FACE, photo)
        return []
    if len(faces) == 1 or mode == "all":
        return faces
    if mode == "largest":
        problems.warn(LARGEST, f"{photo} ({len(faces)} faces)")
        return faces[:1]
    problems.skip(SEVERAL, f"{photo} ({len(faces)} faces)")
    return []


def crop_photos(photos_dir, out_dir, size=128, margin=None, mode="one", min_confidence=0.9, min_face=40,
                problems=None) -> List[Dict]:
    """Detect, align and write the crops of every photo into out_dir/imgs. Returns one row per crop."""
    from data.faces import DEFAULT_MARGIN, align_face, detect_faces

    margin = DEFAULT_MARGIN if margin is None else margin
    photos = list_images(photos_dir, recursive=True)
    if not photos:
        raise UserError(photos_dir, f"no photos ({', '.join('*' + e for e in IMAGE_EXTENSIONS)}), sub-folders "
                                    "included")
    rows, names = [], {}
    with progress_bar(len(photos), "finding faces") as bar:
        for photo, image in _read_ahead(lambda p: read_image(os.path.join(photos_dir, p)), photos):
            bar.update()
            if isinstance(image, UserError):
                problems.skip(UNREADABLE, f"{photo} ({image.problem})")
                continue
            faces = _faces_to_crop(detect_faces(image, min_confidence, min_face), mode, photo, problems)
            for k, face in enumerate(faces):
                name = crop_name(photo) + (f"_face{k}" if len(faces) > 1 else "")
                if name in names:
                    raise UserError(os.path.join(photos_dir, photo), f"its crop would be named {name}, as the "
                                                                     f"crop of {names[name]}: rename one photo")
                names[name] = photo
                crop, _ = align_face(image, face, size, margin)
                write_image(os.path.join(out_dir, "imgs", name + ".jpg"), crop)
                rows.append({"path": f"imgs/{name}.jpg", "photo": photo, "confidence": f"{face.confidence:.4f}",
                             "box": " ".join(f"{v:.1f}" for v in face.box)})
    return rows


def assign_splits(rows, test_fraction, seed):
    """Put the crops of a `test_fraction` of the photos (drawn with `seed`, at least one photo in train and,
    when test_fraction > 0 and there are two photos, at least one in test) into 'test', the rest into 'train'."""
    photos = sorted({r["photo"] for r in rows})
    n_test = 0
    if test_fraction > 0 and len(photos) > 1:
        n_test = int(min(len(photos) - 1, max(1, round(test_fraction * len(photos)))))
    test = {photos[i] for i in np.random.default_rng(seed).permutation(len(photos))[:n_test]}
    for r in rows:
        r["split"] = "test" if r["photo"] in test else "train"


# ----------------------------------------------------------------------------------------------- files


def crops_csv_text(rows) -> str:
    return csv_text(["path", "split", "photo", "confidence", "box"],
                    [[r["path"], r["split"], r["photo"], r["confidence"], r["box"]] for r in rows])


def read_crops_csv(dataset) -> List[Dict]:
    path = os.path.join(dataset, CROPS)
    if not os.path.isfile(path):
        raise UserError(dataset, f"no {CROPS}: not a folder written by python -m data.prepare --photos")
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    if not rows or not {"path", "split"} <= set(rows[0]):
        raise UserError(path, "expected the columns path,split,... and at least one crop")
    return rows


def join_aus(dataset, csv_dir, rows, min_confidence, problems) -> str:
    """The manifest text (path, split, 17 AUs) for the crops whose OpenFace CSV has a usable face row."""
    from data.readers import best_openface_rows

    if not os.path.isdir(csv_dir):
        raise UserError(csv_dir, "is not a folder (expected OpenFace's output: one <crop name>.csv per crop)")
    have, names, lines = [], [], []  # the crops with an OpenFace CSV, their names; the manifest rows
    for r in rows:
        name = os.path.splitext(os.path.basename(r["path"]))[0]
        if os.path.isfile(os.path.join(csv_dir, name + ".csv")):
            have.append(r)
            names.append(name)
        else:
            problems.skip(NO_CSV, name)
    csv_paths = [os.path.join(csv_dir, name + ".csv") for name in names]
    for r, name, aus in zip(have, names, best_openface_rows(csv_paths, min_confidence)):
        if isinstance(aus, NoRows):
            problems.skip(f"{aus.problem} in its OpenFace CSV" if aus.problem.startswith("AU value") else NO_ROW, name)
            continue
        lines.append([r["path"], r["split"]] + [f"{v:.6g}" for v in aus.astype(np.float64)])  # float32: 6 digits
    if not lines:
        raise UserError(csv_dir, f"none of the {len(rows)} crops of {dataset} has usable AUs here (expected "
                                 "<crop name>.csv from OpenFace FaceLandmarkImg)")
    return csv_text(["path", "split"] + list(AU_NAMES), lines)


def prepare(photos, out, aus=None, size=128, margin=None, mode="one", test_fraction=0.1, seed=0,
            detect_confidence=0.9, min_face=40, min_confidence=None, problems=None) -> List[Dict]:
    """Steps 1-3 of the module docstring into the new folder `out` (which must not exist, or be empty).
    Returns the crop rows."""
    from utils.files import atomic_write_text, replace_folder
    problems = problems if problems is not None else Problems()
    if not os.path.isdir(photos):
        raise UserError(photos, "is not a folder of photos")
    out = os.path.abspath(out)
    if os.path.exists(out) and (not os.path.isdir(out) or os.listdir(out)):
        raise UserError(out, "exists and is not an empty folder: choose a new folder for the data set")
    with replace_folder(out, CROPS) as tmp:
        rows = crop_photos(photos, tmp, size, margin, mode, detect_confidence, min_face, problems)
        if not rows:
            raise UserError(photos, f"no face cropped: {problems.one_line()}")
        assign_splits(rows, test_fraction, seed)
        if aus is not None:
            atomic_write_text(os.path.join(tmp, MANIFEST), join_aus(out, aus, rows, min_confidence, problems))
        write_problems_csv(os.path.join(tmp, REPORT), problems)
        atomic_write_text(os.path.join(tmp, CROPS), crops_csv_text(rows))  # last: the data set is complete
    return rows


# ----------------------------------------------------------------------------------------------- command line


def main(argv=None):
    parser = ArgumentParser(prog="python -m data.prepare", description=__doc__.split("\n\n")[0], epilog=__doc__)
    io = parser.add_argument_group("inputs and output (--photos, --aus or both)")
    io.add_argument("--photos", metavar="DIR", help="folder of photos (sub-folders included)")
    io.add_argument("--aus", metavar="DIR", help="folder of OpenFace CSVs of the crops, <crop name>.csv")
    io.add_argument("--out", required=True, metavar="DIR",
                    help="the data set folder (new, or a prepared one with --aus only)")
    crops = parser.add_argument_group("faces and crops")
    crops.add_argument("--size", type=int, default=128, metavar="N", help="crop side in pixels, at least 16")
    crops.add_argument("--margin", type=float, default=None, metavar="X",
                       help="context around the face, a fraction of the tight crop per side, 0-1 (default: 0.1)")
    several = crops.add_mutually_exclusive_group()  # neither: photos with several faces are skipped
    several.add_argument("--largest", action="store_true", help="photos with several faces: crop the largest")
    several.add_argument("--all-faces", action="store_true", help="photos with several faces: crop them all")
    crops.add_argument("--detect-confidence", type=float, default=0.9, metavar="X",
                       help="MTCNN score to accept a face")
    crops.add_argument("--min-face", type=int, default=40, metavar="N", help="smallest face box width in pixels")
    split = parser.add_argument_group("split and AUs")
    split.add_argument("--test-fraction", type=float, default=0.1, metavar="X",
                       help="photos for the test split, in [0, 1)")
    split.add_argument("--seed", type=int, default=0, metavar="N", help="seed of the split")
    split.add_argument("--min-confidence", type=float, default=None, metavar="X",
                       help="OpenFace rows with a lower confidence are not used")
    args = parser.parse_args(argv)
    if args.photos is None and args.aus is None:
        raise UserError(None, "give --photos (to crop faces) or --aus (to join OpenFace AUs into --out)")
    if args.size < 16:
        raise UserError("--size", f"{args.size} is less than 16 pixels")
    if not 0 <= args.test_fraction < 1:
        raise UserError("--test-fraction", f"{args.test_fraction:g} is outside [0, 1)")
    if args.margin is not None and not 0 <= args.margin <= 1:
        raise UserError("--margin", f"{args.margin:g} is outside [0, 1]")
    problems = Problems()
    if args.photos is None:
        rows = read_crops_csv(args.out)
        text = join_aus(args.out, args.aus, rows, args.min_confidence, problems)
        from utils.files import atomic_write_text
        atomic_write_text(os.path.join(args.out, MANIFEST), text)
        write_problems_csv(os.path.join(args.out, REPORT_AUS), problems)
        print(f"{args.out}/{MANIFEST}: {text.count(chr(10)) - 1} of {len(rows)} crops with AUs")
    else:
        mode = "largest" if args.largest else "all" if args.all_faces else "one"
        rows = prepare(args.photos, args.out, args.aus, args.size, args.margin, mode, args.test_fraction,
                       args.seed, args.detect_confidence, args.min_face, args.min_confidence, problems)
        n_test = sum(r["split"] == "test" for r in rows)
        print(f"{args.out}: {len(rows)} crops ({len(rows) - n_test} train, {n_test} test) from "
              f"{len({r['photo'] for r in rows})} photos; details in {args.out}/{REPORT}")
    for line in problems.lines():
        print(line)
    if args.aus is None:
        imgs = os.path.join(args.out, "imgs")
        print(OPENFACE_HELP.format(imgs=imgs, csvs=os.path.join(args.out, "openface"), out=args.out))
    else:
        print(f"train with: python train.py --data {args.out}")
    return 0


if __name__ == "__main__":
    from utils.cli import run_main
    run_main(main)
