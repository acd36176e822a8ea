"""Faces in a photo: find and crop the faces to edit, and put the edited crops back.

    photo = find_faces(image, size=128, choice="all", source="photo.jpg")  # detect, select, align
    out = paste_back(photo, edited_crops)                                   # one crop per photo.faces

The face finding and the geometry are data/faces.py's (MTCNN, eye alignment, feathered paste-back); this module
decides which faces to edit and what to do without one. Outside the blended regions (each crop's footprint in
the photo) the result is the input photo byte for byte.

Which images are searched for faces (`detect`):
  None (the default): an image exactly the model's size (e.g. 128 x 128) is taken to be an aligned face crop,
                      as in the training data, and not searched; any other image is. A photo with no face is a
                      UserError, except that a small image (at most CROP_MAX_SIDE pixels a side), in which MTCNN
                      often finds no face because the face fills it, is taken to be a face crop too.
  True:               always search (--detect); no face is a UserError whatever the size.
  False:              never search (--no-detect): the whole image is the crop.
A crop is resized to the model's size, edited, and written at that size (there is nothing to paste it into).
"""
from dataclasses import dataclass
from typing import List, Optional

import numpy as np

from data.faces import DEFAULT_MARGIN
from data.images import resize_square
from utils.errors import UserError

CROP_MAX_SIDE = 256  # an image this small without a detected face is treated as a face crop


@dataclass
class FaceCrop:
    number: int                 # 1 = the largest face found, 2 = the next, ...
    real: np.ndarray            # the aligned crop, uint8 (S, S, 3): what the model edits
    M: Optional[np.ndarray]     # 2x3 map from photo to crop pixels; None when the whole image is the crop
    box: Optional[tuple] = None  # the detector's box (x1, y1, x2, y2), photo pixels


@dataclass
class Photo:
    image: np.ndarray           # uint8 RGB (H, W, 3), as read
    faces: List[FaceCrop]       # the faces to edit, largest first
    found: int                  # faces detected (0 when the image is used whole)
    note: str = ""              # why the whole image is the crop, if it is

    @property
    def whole(self):
        return self.faces[0].M is None


def parse_face_choice(text):
    """`all`, `largest`, or 1-based face numbers in largest-first order (`2`, `1,3`) -> "all" or a tuple."""
    text = str(text).strip().lower()
    if text == "all":
        return "all"
    if text == "largest":
        return (1,)
    try:
        numbers = tuple(int(t) for t in text.split(","))
    except ValueError:
        numbers = ()
    if not numbers or min(numbers) < 1 or len(set(numbers)) != len(numbers):
        raise UserError("--face", f"{text!r}: expected all, largest, or face numbers from 1 (largest first), "
                                  "e.g. 2 or 1,3")
    return numbers


def _ordinal(n):
    return {1: "first", 2: "second", 3: "third"}.get(n, f"{n}th")


def whole_image(image, size, note=""):
    """The image used as one face crop (resized to the model's size; no paste-back)."""
    return Photo(image=image, faces=[FaceCrop(1, resize_square(image, size), None)], found=0, note=note)


def find_faces(image, size, choice="all", detect=None, margin=DEFAULT_MARGIN, min_confidence=0.9, source=None):
    """Detect, select and align the faces of `image` (uint8 RGB) for a model of `size` pixels.

    choice: "all" or a tuple of 1-based face numbers (parse_face_choice). detect: None, True or False (see the
    module docstring). Raises UserError(source, ...) when there is no face to edit."""
    if detect is False or (detect is None and image.shape[:2] == (size, size)):
        return whole_image(image, size)
    from data.faces import align_face, detect_faces
    faces = detect_faces(image, min_confidence=min_confidence)
    if not faces:
        h, w = image.shape[:2]
        if detect is None and max(h, w) <= CROP_MAX_SIDE:
            return whole_image(image, size, note="no face found; a small image: edited whole, as a face crop")
        raise UserError(source, f"no face found in this {w} x {h} image (MTCNN, confidence >= {min_confidence:g}); "
                                "pass --no-detect to edit the whole image as one face crop")
    numbers = range(1, len(faces) + 1) if choice == "all" else choice
    if max(numbers) > len(faces):
        raise UserError(source, f"--face {max(numbers)} asks for the {_ordinal(max(numbers))} largest face, "
                                f"but {len(faces)} {'face was' if len(faces) == 1 else 'faces were'} found")
    crops = []
    for n in numbers:
        real, M = align_face(image, faces[n - 1], size, margin)
        crops.append(FaceCrop(n, real, M, faces[n - 1].box))
    return Photo(image=image, faces=crops, found=len(faces))


def paste_back(photo, crops, feather=0.08):
    """The photo with each face replaced by its edited crop (uint8 (S, S, 3), in photo.faces order).

    With a whole-image crop there is nothing to paste into: the edited crop itself is returned. Faces are
    pasted smallest first, so where two crops overlap the larger face is on top."""
    if photo.whole:
        return crops[0]
    from data.faces import paste_face
    out = photo.image
    for face, crop in reversed(list(zip(photo.faces, crops))):
        out = paste_face(out, crop, face.M, feather)
    return out


def paste_attention(photo, attentions, feather=0.08):
    """The attention masks (float (S, S, 1) in [0, 1], in photo.faces order) as one gray uint8 image of the
    output's size: white keeps the input pixel, which is what the rest of the photo does."""
    gray = [np.repeat((a[..., :1] * 255).round().astype(np.uint8), 3, axis=2) for a in attentions]
    if photo.whole:
        return gray[0][..., 0]
    white = Photo(np.full_like(photo.image, 255), photo.faces, photo.found)
    return paste_back(white, gray, feather)[..., 0]


def strip(real, attention, color, fake):
    """One face's panel, left to right: input | attention | color | output (uint8 (S, 4S, 3))."""
    att = np.repeat((attention[..., :1] * 255).round().astype(np.uint8), 3, axis=2)
    return np.concatenate([real, att, color, fake], axis=1)
