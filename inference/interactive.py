"""What the web page (app.py) does between clicks, without the page: open a photo or a built-in face, estimate
its AUs, edit it to the sliders' AUs, and animate.

    session = open_image(model, read_upload("photo.jpg"), "photo.jpg")     # faces found, AUs estimated
    edited, attention, strip = edit(model, session, aus)                  # the photo with the face pasted back
    gif, mp4 = animate(model, session, aus, frames=12, out_dir="anim")   # source expression -> aus

Every step is infer.py's own library: inference/photo.py finds the faces, inference/outputs.py edits them into
named results (the photo with the face pasted back, the attention, the strip, the animation's frames) and writes
the animation's files, inference/edit.py runs the model. This module adds only the limits of a page that anyone
can upload to, and the state it keeps: which face is being edited and that face's estimated AUs (where the
sliders start and where animations begin).
"""
import os
from dataclasses import dataclass

import numpy as np

from data.constants import AU_MAX, NUM_AUS
from data.images import MAX_PIXELS  # larger images are refused before they are decoded (infer.py's limit too)
from utils.errors import UserError

MAX_UPLOAD_MB = 25                # larger files are refused (the page's upload limit too)
MIN_SIDE = 16                     # smaller images are refused
WORK_MAX_SIDE = 2048              # larger photos are shrunk to this for the page: each edit re-pastes the photo
MAX_FRAMES = 48                   # longest animation the page makes
BUILTIN_FACES = 1000              # built-in face numbers 1 ... BUILTIN_FACES (held-out identities)


@dataclass
class Session:
    """One opened photo: what the page keeps between clicks."""
    name: str            # the file name (or "built-in face N"): messages and output file names
    photo: object        # inference.photo.Photo: the image and every face found, largest first
    aus: np.ndarray      # float32 (F, 17): each face's AUs as the model's AU head estimates them
    face: int = 0        # index into photo.faces of the face being edited

    @property
    def source(self):
        """The edited face's estimated AUs (17,): where the sliders start and animations begin."""
        return self.aus[self.face]

    def edited_photo(self):
        """The photo with only the chosen face to edit (the other faces stay as they are)."""
        from inference.photo import Photo
        p = self.photo
        return Photo(p.image, [p.faces[self.face]], p.found, p.note)

    def describe(self):
        h, w = self.photo.image.shape[:2]
        if self.photo.whole:
            return f"{self.name}: {w} x {h}, edited whole as one face crop ({self.photo.note or 'no detection'})"
        n = len(self.photo.faces)
        which = f"; editing face {self.photo.faces[self.face].number} (1 = the largest)" if n > 1 else ""
        return f"{self.name}: {w} x {h}, {n} face{'s' * (n != 1)} found{which}"


def read_upload(path, name=None):
    """An uploaded file -> uint8 RGB, through infer.py's reader, refusing what a page should not take: files over
    MAX_UPLOAD_MB, images over MAX_PIXELS (checked from the header, before decoding) or under MIN_SIDE a side.
    Photos over WORK_MAX_SIDE a side are shrunk. UserError(name, ...) says what is wrong."""
    from PIL import Image

    from data.images import read_image
    from inference.animate import fit_side
    name = name or os.path.basename(path)
    size = os.path.getsize(path)
    if size > MAX_UPLOAD_MB * 2 ** 20:
        raise UserError(name, f"is {size / 2 ** 20:.0f} MB; the page takes images up to {MAX_UPLOAD_MB} MB")
    limit = f"the page takes up to {MAX_PIXELS / 1e6:g} megapixels"
    try:
        with Image.open(path) as probe:  # reads the header only
            w, h = probe.size
    except Image.DecompressionBombError:  # Pillow's own limit, far above ours
        raise UserError(name, f"is too large an image ({limit})") from None
    except Exception:  # not an image Pillow knows: read_image says what it is
        w = h = 0
    if w * h > MAX_PIXELS:
        raise UserError(name, f"is too large an image ({w} x {h} pixels; {limit})")
    try:
        image = read_image(path)
    except UserError as e:
        raise UserError(name, e.problem) from None
    if min(image.shape[:2]) < MIN_SIDE:
        raise UserError(name, f"is too small ({image.shape[1]} x {image.shape[0]} pixels) to hold a face")
    return fit_side(image, WORK_MAX_SIDE)


def builtin_face(number, size):
    """Built-in face `number` (1 ... BUILTIN_FACES): a held-out synthetic identity (never used in training) with
    a neutral expression, rendered at the model's size (so it is used as an aligned face crop)."""
    from data.synthetic import HELD_OUT_IDENTITY_OFFSET, render_face
    number = int(number)
    if not 1 <= number <= BUILTIN_FACES:
        raise UserError("built-in face", f"{number} is not a number from 1 to {BUILTIN_FACES}")
    return render_face(HELD_OUT_IDENTITY_OFFSET + number, np.zeros(NUM_AUS, np.float32), size)


def open_image(model, image, name, detect=None):
    """Find the faces of `image` (as infer.py does) and estimate their AUs -> Session editing the largest.
    detect: None (infer.py's default), False (the whole image is the face crop). UserError: no face."""
    from inference.edit import estimate_aus
    from inference.photo import find_faces
    try:
        photo = find_faces(image, model.image_size, "all", detect, source=name)
    except UserError as e:  # infer.py's message ends with its flag; the page has a check box for it
        raise UserError(name, e.problem.split(";")[0] + "; tick 'whole image' to edit it as one face crop") \
            from None
    return Session(name, photo, estimate_aus(model, np.stack([f.real for f in photo.faces])))


def choose_face(session, number):
    """The session editing face `number` (1 = the largest found)."""
    numbers = [f.number for f in session.photo.faces]
    if number not in numbers:
        raise UserError(session.name, f"has no face {number} (faces: {', '.join(map(str, numbers))})")
    session.face = numbers.index(number)
    return session


def target_aus(values):
    """Slider values -> float32 (1, 17) on 0-5."""
    aus = np.asarray(values, np.float32).reshape(-1)
    if aus.shape != (NUM_AUS,) or not np.all(np.isfinite(aus)):
        raise UserError("AUs", f"expected {NUM_AUS} numbers, got {list(values)}")
    return np.clip(aus, 0.0, AU_MAX)[None]


def _edit(model, session, aus, label, options):
    """infer.py's Edit (inference/outputs.py) of the chosen face to `aus`, named `<the photo's name>_<label>`."""
    from inference.outputs import edit_photos
    from inference.targets import safe_label
    stem = safe_label(os.path.splitext(session.name)[0])
    return next(edit_photos(model, [(session.edited_photo(), stem)], target_aus(aus), [label], options,
                            rows=session.source[None], rows_path="estimated AUs"))


def edit(model, session, aus):
    """The chosen face edited to `aus` (17 values, 0-5) -> (the photo with the face pasted back, the attention
    mask at the photo's size (gray uint8; white keeps the input pixel), the face's strip input | attention |
    color | output): infer.py's `.png`, `_attention.png` and `_strip.png`."""
    from inference.outputs import Options
    result = _edit(model, session, aus, "target", Options(save_attention=True, strip=True))
    return result.image, result.attention, result.strip


def animate(model, session, aus, out_dir, frames=12, pingpong=False, fps=12.0):
    """A GIF and an MP4 from the face's estimated AUs to `aus` (infer.py --animate): written in out_dir as
    <name>_animation.gif / .mp4 -> (gif path, mp4 path)."""
    from inference.outputs import Options, write_edit
    frames = int(frames)
    if not 2 <= frames <= MAX_FRAMES:
        raise UserError("frames", f"{frames}: choose 2 to {MAX_FRAMES} frames")
    result = _edit(model, session, aus, "animation", Options(animate=frames, pingpong=bool(pingpong)))
    return tuple(write_edit(result, out_dir, fps))


def draw_faces(session):
    """The photo with a numbered box on each face found; the edited face's box is thicker."""
    import cv2
    image = session.photo.image.copy()
    if session.photo.whole:
        return image
    line = max(2, round(max(image.shape[:2]) / 300))
    for k, face in enumerate(session.photo.faces):
        x1, y1, x2, y2 = (int(round(v)) for v in face.box)
        color = (40, 220, 90) if k == session.face else (250, 200, 40)
        cv2.rectangle(image, (x1, y1), (x2, y2), color, line * (2 if k == session.face else 1))
        if len(session.photo.faces) > 1:
            cv2.putText(image, str(face.number), (x1 + line, max(y1 - 2 * line, 12 * line)), cv2.FONT_HERSHEY_SIMPLEX,
                        line / 2, color, line, cv2.LINE_AA)
    return image
