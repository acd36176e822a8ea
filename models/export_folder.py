"""An export folder on disk, without TensorFlow: what makes a folder an export, its metadata, and getting it back
after a killed write. Command lines check `--model` with these before the slow TensorFlow import.

An export is written by models/export.py through utils.files.replace_folder, with `ganimation.json` as the
completion marker: the old export stays loadable until the new one has replaced it, and a write killed between
the two renames leaves a complete new export beside the run, which `recover_export` moves into place.
"""
import json
import os
import re
import shutil

from data.constants import CONDITIONINGS, NUM_AUS
from utils.errors import UserError
from utils.files import recover_folder

METADATA_FILE = "ganimation.json"
_LEGACY = re.compile(r"\.export-[a-z0-9_]{8}$")  # what versions before replace_folder built exports in (mkdtemp)


def is_export(path):
    return os.path.isfile(os.path.join(path, "saved_model.pb")) and os.path.isfile(os.path.join(path, METADATA_FILE))


def recover_export(path, clean=False):
    """Move a complete export left by a killed write into `path` when `path` is missing (utils.files.recover_folder;
    clean: also remove the partial leftovers, which only a writer does). Versions before replace_folder built
    exports in `.export-XXXXXXXX`: a complete one of those is taken too. Returns True when an export was moved."""
    path = os.path.abspath(path)
    parent = os.path.dirname(path)
    moved = False
    if os.path.basename(path) == "export" and os.path.isdir(parent):
        for name in sorted(os.listdir(parent)):
            folder = os.path.join(parent, name)
            if not _LEGACY.match(name) or not os.path.isdir(folder):
                continue
            if not os.path.lexists(path) and is_export(folder):
                os.replace(folder, path)
                moved = True
            elif clean:
                shutil.rmtree(folder, ignore_errors=True)
    return recover_folder(path, METADATA_FILE, clean=clean) or moved


def read_metadata(path):
    """The export's ganimation.json, or a UserError saying why `path` is not an export. Exports written before
    the AdaIN variant existed are tile-conditioned on the 17 AUs: `conditioning` and `label_size` default to that."""
    if not os.path.exists(path):
        raise UserError(path, "does not exist")
    if not os.path.isfile(os.path.join(path, "saved_model.pb")):
        raise UserError(path, "not a GANimation export (no saved_model.pb; make one with train.py, or "
                              "`python train.py --export-only --resume RUN_DIR`)")
    try:
        with open(os.path.join(path, METADATA_FILE)) as f:
            meta = json.load(f)
        int(meta["image_size"])
        meta.setdefault("conditioning", "tile")
        meta["label_size"] = int(meta.get("label_size", NUM_AUS))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        raise UserError(path, f"not a GANimation export ({METADATA_FILE} missing or unreadable)") from None
    if meta["conditioning"] not in CONDITIONINGS:
        raise UserError(path, f"unknown conditioning {meta['conditioning']!r} in {METADATA_FILE} "
                              f"(this version knows {', '.join(CONDITIONINGS)})")
    return meta
