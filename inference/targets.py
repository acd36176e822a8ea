"""Target expressions (y_tgt) and source AUs (y_src) for infer.py.

Targets come from one of: an AU CSV (one expression per row), named prototype expressions at an intensity
(inference/expressions.py), or a reference face whose AUs the discriminator's AU head estimates (expression
transfer). The source's own AUs, needed to interpolate from the source to a target, come from a CSV or are
estimated from the face with the same AU head.
"""
import os
import re
from dataclasses import dataclass
from typing import List

import numpy as np

from utils.errors import UserError


@dataclass
class Targets:
    aus: np.ndarray       # float32 (T, 17) on 0-5: y_tgt
    labels: List[str]     # one per row, used in file names


def safe_label(text):
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(text).strip()) or "x"


LABEL_COLUMNS = ("expression", "name", "label", "id")  # a target CSV's column that names its rows


def csv_targets(path):
    """One target per row of an AU CSV (OpenFace or 17 AU-name header), named by its `expression`/`name`/
    `label`/`id` column when that names every row, each differently (e.g. examples/expressions.csv), else
    000, 001, ..."""
    from data.aus import read_au_rows
    rows = read_au_rows(path, extra=LABEL_COLUMNS)
    column = next((rows.extra[c] for c in LABEL_COLUMNS if c in rows.extra), [])
    labels = [re.sub(r"[^A-Za-z0-9_.-]+", "_", text) for text in column]
    if len(set(labels)) != len(rows.aus) or not all(labels):
        labels = [f"{i:03d}" for i in range(len(rows.aus))]
    return Targets(rows.aus, labels)


def expression_targets(spec, intensity):
    """`happy`, `happy,sad` or `all` at `intensity` -> Targets labelled by expression name."""
    from inference.expressions import expression_aus, parse_expressions
    names = parse_expressions(spec)
    return Targets(np.stack([expression_aus(n, intensity) for n in names]), names)


def reference_targets(model, reference, path):
    """Expression transfer: the AU head's estimate on the reference face (a Photo from inference.photo.find_faces,
    its largest face is used) -> one target labelled `ref_<reference file name>`."""
    from inference.edit import estimate_aus
    aus = estimate_aus(model, reference.faces[0].real[None])
    return Targets(aus, [f"ref_{safe_label(os.path.splitext(os.path.basename(path))[0])}"])


def read_source_aus(path):
    """--src-aus: a CSV of the source's own AUs -> float32 (R, 17). R = 1 (every face) or one row per face."""
    from data.aus import read_au_csv
    return read_au_csv(path)


def source_aus_for(rows, n_faces, path):
    """The --src-aus rows for a photo with n_faces faces to edit -> (n_faces, 17)."""
    if len(rows) == 1:
        return np.repeat(rows, n_faces, axis=0)
    if len(rows) == n_faces:
        return rows
    raise UserError(path, f"{len(rows)} rows of source AUs for {n_faces} faces: give one row (used for every "
                          "face) or one row per face, largest face first")
