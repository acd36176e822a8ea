"""Readers that turn real face data sets into a `FaceSet` (paths mode: images are not decoded here).

Four layouts are accepted (`read_dataset` tells them apart):

1. The official GANimation layout: `DIR/imgs/<id>.jpg`, `DIR/train_ids.csv` and `DIR/test_ids.csv` (one image
   file name per line, no header), and the AUs in `DIR/aus.csv` (id + 17 AU columns) or `DIR/aus_openface.pkl`
   (a pickled dict id -> 17 floats, read only with allow_pickle=True). aus.csv wins when both exist.
2. A manifest: a CSV with a `path` column and the 17 AU columns (`AU01` ... `AU45`), paths relative to the
   manifest's folder (absolute paths are kept); optional `id` and `split` columns. `DIR/manifest.csv` or the
   CSV itself. `python -m data.prepare` writes one.
3. A folder of images (`*.jpg`, `*.jpeg`, `*.png`), each with the OpenFace CSV `<stem>.csv` next to it or in
   `DIR/aus/` or `DIR/processed/` (OpenFace's default output folder).
4. A folder of TFRecord shards with its index `tfrecords.json`, written by `python -m data.tfrecords`
   (data/shards.py reads it).

Splits: the official layout has `<split>_ids.csv`, a manifest may have a `split` column. Otherwise the `split`
argument is ignored and every split is the whole folder (train and test are the same list).

Samples that cannot be used (no image, no AUs, bad AU values, no usable OpenFace row, a repeated id) are left
out and recorded in the `problems` argument, a data.problems.Problems (data.dataset.load_dataset passes one, and
checks the images too); called without one, a reader logs them in one warning. A malformed file, or no usable
sample at all, is a `UserError`.
"""
import logging
import os
import re
from typing import Dict, List, Optional, Sequence

import numpy as np

from data.aus import (ID_COLUMNS, NoRows, normalize_id, read_au_files, read_au_pickle, read_au_rows,
                      read_au_table)
from data.constants import AU_NAMES
from data.faceset import FaceSet
from data.images import DATASET_EXTENSIONS, list_images
from data.problems import Problems, reports
from data.shards import SHARDS_INDEX, load_shards
from utils.errors import UserError

logger = logging.getLogger(__name__)

OFFICIAL_IMAGES = "imgs"
OFFICIAL_AUS_CSV = "aus.csv"
OFFICIAL_AUS_PICKLE = "aus_openface.pkl"
MANIFEST_NAME = "manifest.csv"
OPENFACE_CSV_FOLDERS = ("aus", "processed")  # where an image's OpenFace CSV may be, besides next to it

LAYOUTS = ("expected one of: a GANimation folder (imgs/, train_ids.csv/test_ids.csv, aus.csv or "
           "aus_openface.pkl); a manifest CSV or a folder with manifest.csv (path," + ",".join(AU_NAMES[:2])
           + ",...," + AU_NAMES[-1] + "); a folder of images with OpenFace CSVs (<stem>.csv next to each image "
           "or in aus/ or processed/); a folder of TFRecord shards with tfrecords.json")


def _image_index(folder: str) -> Dict[str, str]:
    """{stem: file name} of the images directly in `folder`; .jpg beats .jpeg beats .png for the same stem."""
    best: Dict[str, str] = {}
    for name in sorted(list_images(folder, extensions=DATASET_EXTENSIONS),
                       key=lambda n: DATASET_EXTENSIONS.index(os.path.splitext(n)[1].lower())):
        best.setdefault(os.path.splitext(name)[0], name)
    return best


def _files(folder: str) -> set:
    try:
        return {e.name for e in os.scandir(folder) if e.is_file()}
    except OSError:
        return set()


def _require_folder(root) -> str:
    root = os.fspath(root)
    if not os.path.exists(root):
        raise UserError(root, "does not exist")
    if not os.path.isdir(root):
        raise UserError(root, "is not a folder")
    return root


# ----------------------------------------------------------------------------------------------- official layout


def _repeats(items) -> list:
    """The items that occur earlier in `items` too, in order (one entry per extra occurrence)."""
    seen, again = set(), []
    for item in items:
        if item in seen:
            again.append(item)
        seen.add(item)
    return again


def _read_split(path: str, problems) -> List[str]:
    try:
        with open(path, encoding="utf-8-sig") as fh:
            lines = fh.read().splitlines()
    except UnicodeDecodeError:
        raise UserError(path, "not a text file (not UTF-8)") from None
    except OSError as exc:
        raise UserError(path, f"cannot read: {exc.strerror or exc}") from None
    ids = [normalize_id(line) for line in lines if line.strip()]
    if ids and ids[0].lower() in ID_COLUMNS:
        ids = ids[1:]  # tolerate a header line although the official files have none
    if not ids:
        raise UserError(path, "no ids (the file is empty)")
    problems.warn(f"duplicate id in {os.path.basename(path)} (used once)", _repeats(ids))
    return list(dict.fromkeys(ids))


@reports
def load_official(root, split: str = "train", allow_pickle: bool = False, problems=None) -> FaceSet:
    """The official GANimation layout -> FaceSet (paths mode, absolute paths, ids in split-file order).

    The split's ids come from `<split>_ids.csv` (".jpg" and whitespace stripped, empty lines skipped); images are
    imgs/<id>.jpg (or .jpeg/.png), only checked for existence; AUs from aus.csv, else aus_openface.pkl (needs
    allow_pickle). Ids without an image, without AUs or with bad AU values are left out, and ids found in another
    split's file are warned about (a test face seen in training): all recorded in `problems`.
    """
    root = _require_folder(root)
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", str(split)) or split in (".", ".."):
        raise UserError(root, f"bad split name {split!r}")
    imgs = os.path.join(root, OFFICIAL_IMAGES)
    if not os.path.isdir(imgs):
        raise UserError(root, f"no {OFFICIAL_IMAGES}/ folder (the GANimation layout keeps images in "
                              f"{OFFICIAL_IMAGES}/<id>.jpg)")
    split_file = os.path.join(root, f"{split}_ids.csv")
    if not os.path.isfile(split_file):
        found = sorted(n[:-len("_ids.csv")] for n in _files(root) if n.endswith("_ids.csv"))
        raise UserError(split_file, f"does not exist (split {split!r}; splits found: "
                                    f"{', '.join(found) if found else 'none'})")
    aus_csv = os.path.join(root, OFFICIAL_AUS_CSV)
    aus_pkl = os.path.join(root, OFFICIAL_AUS_PICKLE)
    if os.path.exists(aus_csv):
        table, au_file = read_au_table(aus_csv, problems=problems), aus_csv
    elif os.path.exists(aus_pkl):
        table, au_file = read_au_pickle(aus_pkl, allow_pickle=allow_pickle, problems=problems), aus_pkl
    else:
        raise UserError(root, f"no AU file: expected {OFFICIAL_AUS_CSV} or {OFFICIAL_AUS_PICKLE}")

    ids = _read_split(split_file, problems)
    _report_overlap(root, split, ids, problems)
    images = _image_index(imgs)
    imgs_abs = os.path.abspath(imgs)
    keep, paths, no_image, no_aus, bad_aus = [], [], [], [], []
    for sample in ids:
        name = images.get(sample)
        if sample in table and table[sample] is None:
            bad_aus.append(sample)  # already recorded in problems while reading the AU file
        elif name is None:
            no_image.append(sample)
        elif sample not in table:
            no_aus.append(sample)
        else:
            keep.append(sample)
            paths.append(imgs_abs + os.sep + name)
    problems.skip(f"no image in {OFFICIAL_IMAGES}/", no_image)
    problems.skip(f"no AUs in {os.path.basename(au_file)}", no_aus)
    if not keep:
        raise UserError(split_file, f"no usable samples: of {len(ids)} ids, {len(no_image)} have no image in "
                                    f"{OFFICIAL_IMAGES}/ and {len(no_aus)} have no AUs in "
                                    f"{os.path.basename(au_file)}"
                                    + (f" ({len(bad_aus)} have bad AU values)" if bad_aus else ""))
    aus = np.stack([table[s] for s in keep])
    logger.info("%s: %d samples (split %s, %d skipped)", root, len(keep), split, len(ids) - len(keep))
    return FaceSet(aus=aus, ids=keep, paths=paths, name=f"GANimation {root} ({split})")


def _report_overlap(root: str, split: str, ids: Sequence[str], problems) -> None:
    """Warn about ids of this split that another `<split>_ids.csv` lists too."""
    for name in sorted(_files(root)):
        if name.endswith("_ids.csv") and name != f"{split}_ids.csv":
            other = set(_read_split(os.path.join(root, name), Problems()))  # that file's own repeats: not ours
            problems.warn(f"also in {name}", [i for i in ids if i in other])


# ----------------------------------------------------------------------------------------------- OpenFace folder


def best_openface_rows(csv_paths, min_confidence=None) -> list:
    """For each OpenFace CSV, the AUs (17,) of its highest-confidence usable row (rows with bad AU values are not
    usable), or the NoRows that says why it has none (naming the bad values when those were the reason). The CSVs
    are read together (data.aus.read_au_files: one pandas parse for many one-row files)."""
    return [_best_face(path, rows) for path, rows in zip(csv_paths, read_au_files(csv_paths, min_confidence,
                                                                                  lenient=True))]


def _best_face(csv_path, rows):
    if isinstance(rows, NoRows):
        return rows
    good = [k for k, problem in enumerate(rows.problems) if problem is None]
    if not good:
        return NoRows(csv_path, rows.problems[0])
    if len(good) > 1 and rows.confidence is None:
        raise UserError(csv_path, f"{len(rows.aus)} rows and no confidence column to choose the face by")
    return rows.aus[good[int(np.argmax(rows.confidence[good]))] if len(good) > 1 else good[0]]


@reports
def load_openface_folder(root, min_confidence: Optional[float] = None, problems=None) -> FaceSet:
    """A folder of images, each with an OpenFace CSV -> FaceSet (paths mode, sorted by file name).

    The CSV of `<stem>.<ext>` is `<stem>.csv` next to the image, else in aus/ or processed/. A CSV with several
    rows gives its highest-confidence successful row. Images without a CSV, or whose CSV has no usable row
    (no face found, success 0, confidence below min_confidence, bad AU values), are left out and recorded in
    `problems`; a malformed CSV is a UserError. `split` does not apply: this is the whole folder.
    """
    root = _require_folder(root)
    images = _image_index(root)
    if not images:
        raise UserError(root, f"no images ({', '.join('*' + e for e in DATASET_EXTENSIONS)})")
    csv_dirs = [root] + [os.path.join(root, d) for d in OPENFACE_CSV_FOLDERS]
    csv_sets = [_files(d) for d in csv_dirs]
    root_abs = os.path.abspath(root)
    found = {stem: next((os.path.join(d, stem + ".csv") for d, names in zip(csv_dirs, csv_sets)
                         if stem + ".csv" in names), None) for stem in sorted(images)}
    no_csv = [stem for stem, csv_path in found.items() if csv_path is None]
    stems = [stem for stem, csv_path in found.items() if csv_path is not None]
    keep, paths, rows, no_face = [], [], [], []
    for stem, aus in zip(stems, best_openface_rows([found[s] for s in stems], min_confidence)):
        if isinstance(aus, NoRows):
            if aus.problem.startswith("AU value"):
                problems.skip(f"{aus.problem} in its OpenFace CSV", stem)
            else:
                no_face.append(stem)
            continue
        keep.append(stem)
        paths.append(os.path.join(root_abs, images[stem]))
        rows.append(aus)
    problems.skip("no OpenFace CSV (<stem>.csv next to the image or in aus/ or processed/)", no_csv)
    problems.skip("no usable face row in the OpenFace CSV", no_face)
    if not keep:
        raise UserError(root, f"no usable images: of {len(images)} images, {len(no_csv)} have no OpenFace CSV "
                              f"(<stem>.csv next to the image or in aus/ or processed/) and {len(no_face)} have "
                              "no usable face row")
    logger.info("%s: %d samples from OpenFace CSVs (%d skipped)", root, len(keep), len(images) - len(keep))
    return FaceSet(aus=np.stack(rows), ids=keep, paths=paths, name=f"OpenFace folder {root}")


# ----------------------------------------------------------------------------------------------- manifest


def _manifest_split(path, rows, split) -> List[int]:
    """Indices of the manifest rows in `split` (all rows when there is no split column or no split asked)."""
    if split is None or "split" not in rows.extra:
        if split not in (None, "train", "test"):
            logger.warning("%s: split %r ignored: the manifest has no split column", path, split)
        return list(range(len(rows.aus)))
    chosen = [k for k, s in enumerate(rows.extra["split"]) if s == split]
    if not chosen:
        found = sorted(set(rows.extra["split"]))
        raise UserError(path, f"no rows of split {split!r} (the split column holds: {', '.join(found)})")
    return chosen


@reports
def load_manifest(path, split: Optional[str] = None, problems=None) -> FaceSet:
    """A manifest CSV (`path` + the 17 AU columns, optional `id` and `split`) -> FaceSet (paths mode,
    file order).

    Relative paths are relative to the manifest's folder. Ids are the `id` column, else the image file stems.
    With a `split` column (e.g. train/test) and a `split` asked for, only that split's rows are read.
    Rows whose image does not exist, rows with bad (empty, NaN, out-of-range) AU values, second rows of the same
    image, and rows repeating an earlier row's `id` on another image are left out and recorded in `problems`.
    Without an `id` column, images of the same file name in different folders share an id: kept, with a warning.
    """
    path = os.fspath(path)
    rows = read_au_rows(path, extra=("path", "id", "split"), lenient=True)
    if "path" not in rows.extra:
        raise UserError(path, f"no path column (a manifest has columns path,{','.join(AU_NAMES)})")
    base = os.path.dirname(os.path.abspath(path))
    listing: Dict[str, set] = {}
    keep_idx, paths, ids, missing, repeated, seen = [], [], [], [], [], set()
    same_id, same_name, id_seen = [], [], set()
    given_ids = rows.extra.get("id")
    chosen = _manifest_split(path, rows, split)
    for k in chosen:
        raw, line = rows.extra["path"][k], rows.lines[k]
        if not raw:
            raise UserError(path, f"{line}: empty path")
        if given_ids is not None and not given_ids[k]:
            raise UserError(path, f"{line}: empty id")
        full = os.path.normpath(os.path.join(base, raw))  # join keeps absolute paths as they are
        folder, name = os.path.split(full)
        if folder not in listing:
            listing[folder] = _files(folder)
        sample = given_ids[k] if given_ids is not None else normalize_id(raw)
        if name not in listing[folder]:
            missing.append(sample)
        elif full in seen:
            repeated.append(sample)
        elif rows.problems[k] is not None:
            problems.skip(f"{rows.problems[k]} in {os.path.basename(path)}", sample)
        elif given_ids is not None and sample in id_seen:
            same_id.append(f"{sample} ({raw})")
        else:
            if sample in id_seen:
                same_name.append(f"{sample} ({raw})")
            keep_idx.append(k)
            paths.append(full)
            ids.append(sample)
            id_seen.add(sample)
        seen.add(full)
    problems.skip("image file does not exist", missing)
    problems.skip("image listed again (its first row is used)", repeated)
    problems.skip(f"duplicate id in {os.path.basename(path)} on another image (its first row is used)", same_id)
    problems.warn("same file name as an earlier image in another folder (both kept; add an id column to name them)",
                  same_name)
    if not keep_idx:
        raise UserError(path, f"no usable rows: of {len(chosen)} rows, {len(missing)} name no existing image "
                              f"(paths are relative to {base})"
                              + (f" and {len(chosen) - len(missing)} have other problems" if len(missing) < len(chosen)
                                 else ""))
    where = f"manifest {path}" + (f" ({split})" if split is not None and "split" in rows.extra else "")
    return FaceSet(aus=rows.aus[keep_idx], ids=ids, paths=paths, name=where)


# ----------------------------------------------------------------------------------------------- dispatch


def detect_layout(path) -> str:
    """'shards', 'official', 'manifest' or 'openface' for an existing path; UserError when nothing matches."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise UserError(path, "does not exist")
    if os.path.isfile(path):
        if path.lower().endswith(".csv"):
            return "manifest"
        if os.path.basename(path) == SHARDS_INDEX:
            return "shards"
        raise UserError(path, "not a dataset: " + LAYOUTS)
    names = _files(path)
    if SHARDS_INDEX in names:
        return "shards"
    if os.path.isdir(os.path.join(path, OFFICIAL_IMAGES)) and (
            OFFICIAL_AUS_CSV in names or OFFICIAL_AUS_PICKLE in names or any(n.endswith("_ids.csv") for n in names)):
        return "official"
    if MANIFEST_NAME in names:
        return "manifest"
    if any(os.path.splitext(n)[1].lower() in DATASET_EXTENSIONS for n in names):
        return "openface"
    raise UserError(path, "no data set found: " + LAYOUTS)


@reports
def read_dataset(path, split: str = "train", allow_pickle: bool = False,
                 min_confidence: Optional[float] = None, problems=None):
    """Read any accepted layout (see the module docstring) -> FaceSet in paths mode, or for a folder of
    TFRecord shards (`python -m data.tfrecords`) a data.shards.ShardSet. The images are not checked here
    (data.dataset.load_dataset checks them, and is what training calls).

    split:          the official layout's `<split>_ids.csv`, or a manifest's `split` column; ignored elsewhere
                    (whole folder for every split).
    allow_pickle:   allow reading the official aus_openface.pkl (restricted unpickler).
    min_confidence: OpenFace folders only: skip face rows with lower confidence (ignored, with a warning, for
                    the other layouts, whose files carry no confidence).
    problems:       a data.problems.Problems that collects the samples left out, and why.
    """
    layout = detect_layout(path)
    path = os.fspath(path)
    if min_confidence is not None and layout != "openface":
        logger.warning("%s: min_confidence applies only to folders of OpenFace CSVs; ignored", path)
    if layout == "shards":
        return load_shards(path if os.path.isdir(path) else os.path.dirname(path), split=split)
    if layout == "official":
        return load_official(path, split=split, allow_pickle=allow_pickle, problems=problems)
    if layout == "manifest":
        return load_manifest(path if os.path.isfile(path) else os.path.join(path, MANIFEST_NAME), split=split,
                             problems=problems)
    if split not in (None, "train", "test"):
        logger.warning("%s: split %r ignored: this layout has no splits, every split is the whole set", path,
                       split)
    return load_openface_folder(path, min_confidence=min_confidence, problems=problems)


__all__ = ["read_dataset", "load_official", "load_openface_folder", "load_manifest", "detect_layout"]
