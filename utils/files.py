"""Writing files and folders so that a killed process never leaves a half-written one.

A file is written to a temporary file in the same folder and renamed into place (atomic on POSIX). A folder
(an export, TFRecord shards, a prepared data set, a run directory) is built beside its place and swapped in by
`replace_folder`, which keeps the old folder usable until the new one has replaced it.
"""
import contextlib
import csv
import io
import logging
import os
import re
import shutil
import tempfile

import cv2
import numpy as np


def atomic_write_bytes(path, data):
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the permissions open() would
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def atomic_write_text(path, text):
    atomic_write_bytes(path, text.encode("utf-8"))


def csv_text(header, rows):
    """A CSV file's text (csv.writer: fields quoted where needed, "\\n" line ends)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def atomic_write_csv(path, header, rows):
    """Write a CSV file atomically: `path` is either the old file or the complete new one."""
    atomic_write_text(path, csv_text(header, rows))


def encode_image(image_rgb, ext=".png"):
    """uint8 RGB (H, W, 3) or gray (H, W) -> encoded bytes."""
    image = np.asarray(image_rgb)
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(ext, image)
    if not ok:
        raise ValueError(f"could not encode an image of shape {image.shape} as {ext}")
    return buf.tobytes()


def write_png(path, image_rgb):
    atomic_write_bytes(path, encode_image(image_rgb, ".png"))


# ----------------------------------------------------------------------------------------------- folders

log = logging.getLogger(__name__)
_BUILDING = set()  # temporary folders this process is building now (not leftovers of a killed one)


@contextlib.contextmanager
def replace_folder(path, marker):
    """Build a folder in a temporary sibling and swap it into `path` when complete.

        with replace_folder("runs/RUN/export", marker="ganimation.json") as tmp:
            ...                                  # write everything into tmp, the file `marker` last
        # now runs/RUN/export is the new folder; the old one, if any, is gone

    The steps, each a single rename or removal, so a kill between any two leaves either the old folder at `path`
    or a complete new one that `recover_folder` (run first by every later write, and by readers) renames into
    place:
      1. build in `.NAME-tmp-PID-*` (mode 0o777 & ~umask, as os.mkdir makes folders);
      2. when the block ends and `marker` is there, rename the old `path` (if any) to `.NAME-old-PID-*`;
      3. rename the new folder to `path`;
      4. remove the old one.
    An error in the block (or a missing marker) removes the new folder and leaves `path` as it was.
    """
    path = os.path.abspath(os.fspath(path))
    parent, name = os.path.split(path)
    os.makedirs(parent, exist_ok=True)
    recover_folder(path, marker)
    tmp = tempfile.mkdtemp(prefix=f".{name}-tmp-{os.getpid()}-", dir=parent)
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700; give the folder the permissions mkdir would
    _BUILDING.add(tmp)
    old = None
    try:
        yield tmp
        if not os.path.isfile(os.path.join(tmp, marker)):
            raise RuntimeError(f"{tmp}: built without its completion marker {marker}")
        if os.path.lexists(path):
            old = _sibling(parent, name, "old")
            os.replace(path, old)
        os.replace(tmp, path)
    except BaseException:
        if old is not None and not os.path.lexists(path):
            os.replace(old, path)  # the new folder could not be moved in: put the old one back
            old = None
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        _BUILDING.discard(tmp)
    if old is not None:
        try:
            shutil.rmtree(old)
        except OSError as exc:  # the new folder is in place; the next write removes what is left
            log.warning("could not remove the replaced folder %s: %s", old, exc)


def recover_folder(path, marker, clean=True):
    """Finish what a killed `replace_folder` left, so that `path` holds a complete folder again.

    When `path` is missing and a complete new folder (one holding `marker`) is left beside it, that folder is
    renamed into place (else a complete old one is put back). With `clean`, the other leftovers are removed:
    partial new folders and replaced old ones. Leftovers of processes that are still running (by their process
    id on this machine) are never touched. Returns True when a folder was moved into place."""
    path = os.path.abspath(os.fspath(path))
    parent, name = os.path.split(path)
    try:
        entries = os.listdir(parent)
    except OSError:
        return False
    pattern = re.compile(rf"\.{re.escape(name)}-(tmp|old)-(\d+)-")
    leftovers = []  # (kind, folder) of writers no longer running
    for entry in entries:
        match = pattern.match(entry)
        folder = os.path.join(parent, entry)
        if match and os.path.isdir(folder) and not _writing(folder, int(match.group(2))):
            leftovers.append((match.group(1), folder))
    moved = False
    if not os.path.lexists(path):
        complete = [(kind == "old", -os.path.getmtime(f), f) for kind, f in leftovers
                    if os.path.isfile(os.path.join(f, marker))]
        if complete:  # the newest complete new folder, else the old one
            folder = min(complete)[2]
            os.replace(folder, path)
            log.info("%s: recovered from %s, left by an interrupted write", path, os.path.basename(folder))
            moved = True
    if clean:
        for _, folder in leftovers:
            if os.path.isdir(folder):
                shutil.rmtree(folder, ignore_errors=True)
    return moved


def _sibling(parent, name, kind):
    """A new name `.NAME-KIND-PID-XXXXXXXX` in parent (not created)."""
    while True:
        folder = os.path.join(parent, f".{name}-{kind}-{os.getpid()}-{os.urandom(4).hex()}")
        if not os.path.lexists(folder):
            return folder


def _writing(folder, pid):
    """Whether the process that made `folder` may still be writing it."""
    if pid == os.getpid():
        return folder in _BUILDING
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask
