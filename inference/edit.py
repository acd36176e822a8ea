"""Editing face crops with an exported model: what infer.py calls.

    model = load_model(resolve_model_dir(None))          # newest export under runs/
    outputs = edit_crop(model, read_image("face.jpg"), read_au_csv("aus.csv"))

Faces in photos are inference/photo.py, whole photos edited into named results and their files
inference/outputs.py, the target expressions inference/targets.py and expressions.py, animations and videos
inference/animate.py and video.py, and infer.py's command line inference/cli.py.
"""
import glob
import os

import numpy as np

from data.constants import AU_MAX, NUM_AUS
from data.images import resize_square
from utils.errors import UserError

DEFAULT_RUNS_DIR = "runs"


def resolve_model_dir(path, runs_dir=DEFAULT_RUNS_DIR):
    """An export folder from what the user gave: an export, a run directory (its export/), or None (the
    newest export under runs_dir). UserError with what to do when there is none, or when the model does not
    take the 17 AUs (a generator moved to another label set, models/transfer.py). Needs no TensorFlow.
    An export that a killed write left beside its place is moved into place first (models/export_folder.py)."""
    from models.export_folder import is_export, read_metadata, recover_export
    if path is None:
        for run in glob.glob(os.path.join(runs_dir, "*", "")):
            recover_export(os.path.join(run, "export"))
        exports = [os.path.dirname(p) for p in glob.glob(os.path.join(runs_dir, "*", "export", "saved_model.pb"))]
        exports = [e for e in exports if is_export(e)]
        if not exports:
            raise UserError(runs_dir, "no exported model found; train one first (python train.py ...) "
                                      "or name one with --model EXPORT_DIR")
        path = max(exports, key=os.path.getmtime)
    elif not os.path.exists(path):
        if not recover_export(path):
            raise UserError(path, "does not exist")
    elif not os.path.isfile(os.path.join(path, "saved_model.pb")):
        recover_export(os.path.join(path, "export"))
        if is_export(os.path.join(path, "export")):
            path = os.path.join(path, "export")
    label_size = read_metadata(path)["label_size"]  # raises a UserError saying why this is not an export
    if label_size != NUM_AUS:
        raise UserError(path, f"the model takes {label_size} labels, not the {NUM_AUS} AUs that targets, "
                              "expressions and the evaluation are written in")
    return path


def load_model(export_dir):
    from models.export import LoadedModel
    return LoadedModel(export_dir)


def edit_crop(model, image, aus, batch_size=16):
    """Edit one face crop to each row of target AUs.

    image: uint8 RGB (H, W, 3) of any size (resized to the model's size). aus: (N, 17) on the 0-5 scale.
    Returns a dict of arrays with N rows: images uint8 (N, S, S, 3), attention float32 (N, S, S, 1),
    color uint8 (N, S, S, 3), and `input`, the resized crop (S, S, 3).
    """
    aus = np.asarray(aus, np.float32)
    if aus.ndim != 2 or aus.shape[1] != 17:
        raise ValueError(f"aus must be (N, 17), got {aus.shape}")
    crop = resize_square(image, model.image_size)
    out = edit_pairs(model, np.repeat(crop[None], len(aus), axis=0), aus, batch_size)
    out["input"] = crop
    return out


def edit_pairs(model, real, aus, batch_size=16):
    """G(real[k], aus[k]) for every k, in batches: real uint8 (N, S, S, 3), aus (N, 17) on 0-5.
    -> {"images" uint8 (N, S, S, 3), "attention" float32 (N, S, S, 1), "color" uint8 (N, S, S, 3)}."""
    real, aus = np.asarray(real, np.uint8), np.asarray(aus, np.float32)
    if real.ndim != 4 or aus.shape != (len(real), 17):
        raise ValueError(f"expected (N, S, S, 3) images and (N, 17) AUs, got {real.shape} and {aus.shape}")
    parts = [model.edit(real[k:k + batch_size], aus[k:k + batch_size]) for k in range(0, len(real), batch_size)]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def estimate_aus(model, real, batch_size=16):
    """The discriminator's AU head on uint8 crops (N, S, S, 3) -> float32 (N, 17), clipped to 0-5."""
    real = np.asarray(real, np.uint8)
    parts = [model.estimate_aus(real[k:k + batch_size]) for k in range(0, len(real), batch_size)]
    return np.clip(np.concatenate(parts), 0.0, AU_MAX).astype(np.float32)

