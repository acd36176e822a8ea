"""Faces in photos: detection (MTCNN), alignment on the eyes, and pasting an edited crop back.

    faces = detect_faces(photo)                       # photo: uint8 RGB (H, W, 3); largest face first
    crop, M = align_face(photo, faces[0], size=128)   # M: the 2x3 affine map from photo to crop pixels
    photo2 = paste_face(photo, edited_crop, M)        # the inverse map, with a feathered edge

MTCNN comes from the `mtcnn` package (its three small networks' weights ship inside the wheel; nothing is
downloaded). Its keypoints are, in this order: left eye, right eye, nose, left and right mouth corner, where
"left" is the image's left (the person's right eye).

The crop is a similarity transform (rotation, uniform scale, shift) that puts the eyes on a horizontal line at
fixed positions, as in aligned face data sets (CelebA's aligned crops, the GANimation crops): with margin 0 the
crop is 2.6 inter-ocular distances wide, the eyes 1/2.6 of the width apart and 0.45 distances above the
centre, which frames brows to chin; `margin` adds that fraction of this tight crop on every side (0.1 by
default: the whole face with the chin, eyes 41 pixels apart in a 128-pixel crop).
"""
import importlib.resources
from dataclasses import dataclass
from typing import List, Tuple

import cv2
import numpy as np

KEYPOINTS = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")
DEFAULT_MARGIN = 0.1
FACE_WIDTH = 2.6         # crop side at margin 0, in inter-ocular distances
EYES_ABOVE_CENTER = 0.45  # eye midpoint above the crop centre, in inter-ocular distances

_detector = None


@dataclass(frozen=True)
class Face:
    box: Tuple[float, float, float, float]  # x1, y1, x2, y2 in photo pixels
    keypoints: np.ndarray                   # (5, 2) float (x, y) in photo pixels, in KEYPOINTS order
    confidence: float

    @property
    def width(self):
        return self.box[2] - self.box[0]

    @property
    def area(self):
        return self.width * (self.box[3] - self.box[1])


def _mtcnn():
    """The detector, built once per process from the weights inside the mtcnn package.

    The weights are given by absolute path: by default mtcnn first looks for `pnet.lz4` etc. in the current
    folder and would unpickle whatever file of that name it finds there."""
    global _detector
    if _detector is None:
        from utils.cli import quiet_tensorflow
        quiet_tensorflow()  # mtcnn imports TensorFlow, whose start-up chatter is not for the user
        from mtcnn import MTCNN
        from mtcnn.stages import StageONet, StagePNet, StageRNet
        weights = importlib.resources.files("mtcnn.assets.weights")
        _detector = MTCNN(stages=[StagePNet(weights=str(weights / "pnet.lz4")),
                                  StageRNet(weights=str(weights / "rnet.lz4")),
                                  StageONet(weights=str(weights / "onet.lz4"))])
    return _detector


def _check_rgb(image):
    if not (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3):
        raise ValueError(f"expected a uint8 RGB image (H, W, 3), got {getattr(image, 'dtype', type(image))} "
                         f"{getattr(image, 'shape', '')}")


def detect_faces(image_rgb, min_confidence: float = 0.9, min_size: int = 20, max_side: int = 1024) -> List[Face]:
    """The faces in a photo, largest first.

    min_confidence: MTCNN's final score below which a detection is dropped.
    min_size:       smallest face box width kept, in photo pixels.
    max_side:       photos larger than this are searched at this size (the pyramid of a 4000-pixel photo is
                    slow and finds nothing more for faces that are worth cropping); coordinates are returned
                    in the photo's own pixels.
    """
    _check_rgb(image_rgb)
    h, w = image_rgb.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    small = image_rgb if scale == 1.0 else cv2.resize(image_rgb, (max(1, round(w * scale)), max(1, round(h * scale))),
                                                      interpolation=cv2.INTER_AREA)
    # mtcnn's own min_face_size is left at its default: in mtcnn 1.0.0 larger values shorten the image pyramid
    # at the wrong end, and faces of every size go unseen.
    rows = _mtcnn().detect_faces(small, box_format="xyxy", output_type="numpy")
    faces = []
    for row in np.asarray(rows, dtype=np.float64).reshape(-1, 16):
        box = tuple(float(v) / scale for v in row[1:5])
        keypoints = np.stack([row[6:11], row[11:16]], axis=1) / scale  # mtcnn stores the 5 x's, then the 5 y's
        face = Face(box=box, keypoints=keypoints, confidence=float(row[5]))
        if face.confidence >= min_confidence and face.width >= min_size:
            faces.append(face)
    return sorted(faces, key=lambda f: (-f.area, f.box))


def alignment_matrix(face: Face, size: int = 128, margin: float = DEFAULT_MARGIN) -> np.ndarray:
    """The 2x3 affine matrix from photo pixels to the size x size aligned crop (see the module docstring)."""
    left, right = face.keypoints[0], face.keypoints[1]
    dx, dy = right - left
    distance = float(np.hypot(dx, dy))
    if distance < 1e-3:
        raise ValueError("the two eye keypoints coincide")
    scale = size / (FACE_WIDTH * (1.0 + 2.0 * margin) * distance)
    cos, sin = scale * dx / distance, scale * dy / distance  # rotate by minus the eye line's angle
    rotation = np.array([[cos, sin], [-sin, cos]])
    eyes = (left + right) / 2.0
    target = np.array([size / 2.0, size / 2.0 - EYES_ABOVE_CENTER * distance * scale])
    return np.hstack([rotation, (target - rotation @ eyes)[:, None]])


def align_face(image_rgb, face: Face, size: int = 128, margin: float = DEFAULT_MARGIN):
    """-> (crop uint8 (size, size, 3), M 2x3 float64 from photo to crop pixels).

    Large faces are warped at an integer multiple of `size` and then shrunk by area averaging, so that the crop
    is not aliased; outside the photo the image is mirrored."""
    _check_rgb(image_rgb)
    M = alignment_matrix(face, size, margin)
    zoom = int(np.clip(np.floor(1.0 / np.hypot(M[0, 0], M[0, 1])), 1, 8))  # photo pixels per crop pixel
    # Warp at `zoom` times the size, then average zoom x zoom blocks: crop pixel j is the mean of big pixels
    # zoom*j ... zoom*j + zoom - 1, whose centre is zoom*j + (zoom - 1) / 2, so shift the big warp by that half.
    big_M = M * zoom
    big_M[:, 2] += (zoom - 1) / 2
    big = cv2.warpAffine(image_rgb, big_M, (size * zoom, size * zoom), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REFLECT_101)
    crop = big if zoom == 1 else cv2.resize(big, (size, size), interpolation=cv2.INTER_AREA)
    return crop, M


def paste_face(image_rgb, crop, M, feather: float = 0.08) -> np.ndarray:
    """The photo with `crop` (from align_face's M, possibly edited) warped back into place.

    feather: width of the blend at the crop's border, as a fraction of its side, so no seam shows."""
    _check_rgb(image_rgb)
    h, w = image_rgb.shape[:2]
    size = crop.shape[0]
    ramp = max(1.0, feather * size)
    edge = np.minimum(np.arange(size) + 0.5, size - 0.5 - np.arange(size)) / ramp
    mask = np.clip(np.minimum.outer(edge, edge), 0.0, 1.0).astype(np.float32)
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    back = cv2.warpAffine(crop, M, (w, h), flags=flags, borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
    alpha = cv2.warpAffine(mask, M, (w, h), flags=flags, borderMode=cv2.BORDER_CONSTANT, borderValue=0)[..., None]
    out = image_rgb.astype(np.float32) * (1.0 - alpha) + back * alpha
    return np.clip(np.round(out), 0, 255).astype(np.uint8)
