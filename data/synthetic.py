"""Built-in synthetic faces whose 17 AU intensities are known exactly.

`render_face(identity, aus, size)` draws a frontal, cartoon-like face with numpy and OpenCV only (no data
files, no downloads). The image is a pure function of (identity, AUs, size), so the true picture of any
target expression is known: a ground-truth benchmark compares a model's edit with
`render_face(identity, target_aus)`.

The identity integer seeds the face shape (oval, jaw), skin tone, hair colour and style, iris colour, brow
thickness, lip size, background gradient, a small pose jitter (translation, scale, roll), a soft lighting
gradient and, for about 20% of identities, glasses. The AUs never touch the background: outside
`face_mask(identity, size)` two renders of one identity are bit-identical.

Each AU changes only its own region (`au_regions`); its shapes and colours move continuously and
monotonically with the intensity (0 = neutral, 5 = strongest):
    AU01 inner brow raiser:     inner brow ends rise (sad slant), central forehead wrinkles appear.
    AU02 outer brow raiser:     outer brow ends and arches rise, lateral forehead wrinkles appear.
    AU04 brow lowerer:          brows drop and slide together, vertical frown lines between them.
    AU05 upper lid raiser:      upper lids rise, white shows above the iris, eyes open wider.
    AU06 cheek raiser:          cheeks rise and round (highlight), lower lids pushed up, crow's feet.
    AU07 lid tightener:         lower lids rise and straighten (upper lids drop a little), crease below.
    AU09 nose wrinkler:         wrinkles across the nose bridge, nostrils rise and flare.
    AU10 upper lip raiser:      upper lip lifts (upper teeth show), nasolabial folds deepen.
    AU12 lip corner puller:     mouth corners go up and out (smile), nasolabial folds deepen.
    AU14 dimpler:               dimples form beside the mouth corners, which tuck in slightly.
    AU15 lip corner depressor:  mouth corners go down, shadows and short lines below them.
    AU17 chin raiser:           lower lip pushed up and pouted, chin boss bulges and dimples, chin lifts.
    AU20 lip stretcher:         mouth stretches wider and flatter, skin bunches beside the corners.
    AU23 lip tightener:         lips get thinner and slightly narrower, lip borders tense.
    AU25 lips part:             a gap opens between the lips, teeth show.
    AU26 jaw drop:              mouth opens wide and round, the jaw outline and chin move down.
    AU45 blink:                 upper lids come down until the eyes are closed.
Combinations compose (AU06+AU12+AU25+AU26 is a laughing open smile; AU01+AU02+AU05+AU26 is surprise).

Continuity: everything is drawn at 4x the output size with anti-aliased polygons at sub-pixel (1/16 px)
coordinates and reduced with INTER_AREA; all geometry and colours are linear or smooth in the intensities,
so a small change of an AU gives a small change of pixels.

Speed on one core, measured with `make_synthetic_faces`: with 25 faces per identity (each identity's
background, mask and lighting are built once and cached) about 560 faces/s at 32 px, 480/s at 64 px and
320/s at 128 px; with a new identity for every face about 360/s, 250/s and 110/s.
"""
import functools
from dataclasses import dataclass
from typing import Optional

import cv2
import numpy as np

from data.constants import AU_MAX, AU_NAMES, NUM_AUS
from data.faceset import FaceSet
from utils.errors import UserError

HELD_OUT_IDENTITY_OFFSET = 1_000_000  # identities from here on are never used for training
MIN_SIZE = 32

_SS = 4  # supersampling factor: draw at 4x, then average 4x4 blocks
_SHIFT = 4  # fractional bits of the point coordinates given to cv2 (1/16 canvas px)
_FIX = float(1 << _SHIFT)
_SEED_SALT = 0x5F4CE  # keeps identity draws apart from other users of the same integers

# Face coordinates: origin at the centre of the face oval, x to the image's right, y down, and the half
# width of the output image is 1 (before the identity's pose jitter).
_FACE_Y = 0.0  # where the oval centre sits in the frame
_FACE_SCALE = 1.08  # face coordinates to frame half-widths: the face fills the crop
_EYE_Y = -0.10
_BROW_Y = -0.255
_NOSE_TIP_Y = 0.15
_MOUTH_Y = 0.37
_JAW_HINGE_Y = 0.02  # below this, the jaw outline follows the jaw drop
_MAX_JAW_DROP = 0.14

_SKIN_TONES = np.array([(255, 226, 200), (241, 196, 162), (226, 174, 138), (199, 138, 100),
                        (162, 108, 74), (118, 76, 50), (84, 54, 38)], np.float64)
_HAIR_COLORS = np.array([(28, 24, 22), (58, 40, 28), (100, 68, 44), (140, 74, 40), (205, 170, 112),
                         (168, 164, 160), (160, 80, 40)], np.float64)
_HAIR_WEIGHTS = np.array([0.3, 0.25, 0.18, 0.08, 0.1, 0.05, 0.04])
_IRIS_COLORS = np.array([(96, 62, 36), (58, 38, 26), (122, 98, 52), (84, 122, 72), (72, 112, 162),
                         (112, 126, 136)], np.float64)
_IRIS_WEIGHTS = np.array([0.35, 0.2, 0.12, 0.1, 0.15, 0.08])
_HAIR_STYLES = ("short", "long", "bangs", "curly", "bald")
_HAIR_STYLE_WEIGHTS = np.array([0.3, 0.3, 0.15, 0.17, 0.08])
_GLASSES_RATE = 0.2


@dataclass(frozen=True)
class _Identity:
    """Everything about a face that does not depend on the AUs."""
    face_w: float
    face_h: float
    jaw_taper: float
    skin: tuple
    lip: tuple
    hair: tuple
    brow_color: tuple
    iris: tuple
    hair_style: str
    hairline: float
    hair_volume: float
    hair_part: float
    brow_thick: float
    eye_x: float
    eye_w: float
    eye_tilt: float
    mouth_w: float
    lip_up: float
    lip_low: float
    nose_w: float
    bg_a: tuple
    bg_b: tuple
    bg_angle: float
    cloth: tuple
    pose: tuple  # (tx, ty, scale, roll in radians)
    light: tuple  # (angle, strength)
    glasses: Optional[tuple]  # (frame colour, half thickness, squareness, lens half width, half height)


def _identity_params(identity: int) -> _Identity:
    rng = np.random.default_rng((_SEED_SALT, identity))
    skin = _palette(_SKIN_TONES, rng.beta(1.3, 1.6)) + rng.normal(0, 4, 3)
    hair = _HAIR_COLORS[rng.choice(len(_HAIR_COLORS), p=_HAIR_WEIGHTS)] * rng.uniform(0.85, 1.15)
    lip = _mix(skin, (196, 84, 92), rng.uniform(0.45, 0.6)) * rng.uniform(0.78, 0.9)
    brow = np.minimum(_mix(hair, skin * 0.3, 0.45), skin * 0.62)  # blond brows on dark skin would vanish
    style = _HAIR_STYLES[rng.choice(len(_HAIR_STYLES), p=_HAIR_STYLE_WEIGHTS)]
    bg = _mix(rng.uniform(20, 235, 3), (128, 128, 128), rng.uniform(0.2, 0.6))
    return _Identity(
        face_w=rng.uniform(0.53, 0.61), face_h=rng.uniform(0.74, 0.80), jaw_taper=rng.uniform(0.12, 0.3),
        skin=_rgb(skin), lip=_rgb(lip), hair=_rgb(hair), brow_color=_rgb(brow),
        iris=_rgb(_IRIS_COLORS[rng.choice(len(_IRIS_COLORS), p=_IRIS_WEIGHTS)] * rng.uniform(0.85, 1.15)),
        hair_style=style, hairline=rng.uniform(-0.64, -0.56), hair_volume=rng.uniform(0.05, 0.13),
        hair_part=rng.uniform(-0.06, 0.06), brow_thick=rng.uniform(0.014, 0.024),
        eye_x=rng.uniform(0.225, 0.25), eye_w=rng.uniform(0.112, 0.128), eye_tilt=rng.uniform(-0.01, 0.02),
        mouth_w=rng.uniform(0.18, 0.21), lip_up=rng.uniform(0.04, 0.052), lip_low=rng.uniform(0.05, 0.066),
        nose_w=rng.uniform(0.055, 0.075), bg_a=_rgb(bg),
        bg_b=_rgb(np.clip(bg * rng.uniform(0.55, 1.25) + rng.normal(0, 12, 3), 0, 255)),
        bg_angle=rng.uniform(0, 2 * np.pi), cloth=_rgb(rng.uniform(20, 220, 3)),
        pose=(rng.uniform(-0.035, 0.035), rng.uniform(-0.025, 0.025), rng.uniform(0.95, 1.03),
              np.deg2rad(rng.uniform(-4, 4))),
        light=(rng.uniform(0, 2 * np.pi), rng.uniform(0.0, 0.16)),
        glasses=_glasses_params(rng),
    )


def _glasses_params(rng):
    wants = rng.random() < _GLASSES_RATE
    color = _rgb(rng.choice([(20, 20, 24), (70, 44, 30), (150, 150, 158), (110, 24, 30)]))
    shape = (rng.uniform(0.008, 0.014), rng.uniform(2.2, 5.0),  # frame half thickness, squareness
             rng.uniform(0.145, 0.165), rng.uniform(0.085, 0.1))  # lens half width and half height
    return (color,) + shape if wants else None


def _palette(colors, t):
    """Colour at position t in [0, 1] along a list of anchor colours."""
    pos = t * (len(colors) - 1)
    i = min(int(pos), len(colors) - 2)
    return _mix(colors[i], colors[i + 1], pos - i)


def _mix(a, b, t):
    return np.asarray(a, np.float64) * (1 - t) + np.asarray(b, np.float64) * t


def _rgb(c):
    return tuple(float(v) for v in np.clip(c, 0, 255))


def _shade(color, factor):
    return _rgb(np.asarray(color) * factor)


def _crease(skin, factor=0.7):
    """Colour of a wrinkle or fold: relatively and absolutely darker, so it shows on dark skin too."""
    return _rgb(np.asarray(skin) * factor - 14)


def _smoothstep(t):
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3 - 2 * t)


# ----------------------------------------------------------------------------------------------- geometry

@functools.lru_cache(maxsize=None)
def _unit_circle(n):
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.cos(t), np.sin(t)


def _ellipse(cx, cy, rx, ry, n=40, angle=0.0):
    cos, sin = _unit_circle(n)
    x, y = rx * cos, ry * sin
    if angle:
        c, s = np.cos(angle), np.sin(angle)
        x, y = c * x - s * y, s * x + c * y
    return np.stack([cx + x, cy + y], axis=1)


@functools.lru_cache(maxsize=None)
def _bezier_weights(n):
    t = np.linspace(0, 1, n)
    return np.stack([(1 - t) ** 2, 2 * t * (1 - t), t ** 2], axis=1)


def _bezier(p0, p1, p2, n=16):
    """Quadratic Bezier curve through p0 and p2 pulled towards p1."""
    return _bezier_weights(n) @ np.array([p0, p1, p2], np.float64)


def _stroke_outline(curve, half_widths):
    """Polygon around a polyline with a (per point) half width, so stroke width is continuous."""
    d = np.empty_like(curve)
    d[1:-1] = curve[2:] - curve[:-2]  # central differences, one-sided at the ends
    d[0], d[-1] = curve[1] - curve[0], curve[-1] - curve[-2]
    d /= np.maximum(np.hypot(d[:, 0], d[:, 1]), 1e-9)[:, None]
    normal = d[:, ::-1] * np.array([-1.0, 1.0]) * np.reshape(half_widths, (-1, 1))
    return np.concatenate([curve + normal, (curve - normal)[::-1]])


@functools.lru_cache(maxsize=None)
def _taper(n, power=0.6):
    """Width profile that is 1 in the middle of a stroke and goes to 0 at both ends."""
    profile = np.sin(np.linspace(0.02, np.pi - 0.02, n)) ** power
    profile.setflags(write=False)
    return profile


def _mirror(pts):
    return pts * np.array([-1.0, 1.0])


class _Canvas:
    """A supersampled image plus the pose transform from face coordinates to its pixels."""

    def __init__(self, img, matrix):
        self.img = img
        self.matrix = matrix  # 2x3 affine map from face coordinates to pixels of img

    @classmethod
    def posed(cls, img, identity: _Identity):
        """Canvas covering the whole (square) frame, with the identity's pose jitter."""
        n = img.shape[0]
        tx, ty, scale, roll = identity.pose
        k = scale * _FACE_SCALE * n / 2
        c, s = np.cos(roll), np.sin(roll)
        return cls(img, np.array([[k * c, -k * s, n / 2 - 0.5 + tx * n / 2],
                                  [k * s, k * c, n / 2 - 0.5 + (ty + _FACE_Y) * n / 2]]))

    def crop(self, img, x0, y0):
        """Canvas drawing the same face coordinates into `img`, a crop starting at pixel (x0, y0)."""
        return _Canvas(img, self.matrix - np.array([[0, 0, x0], [0, 0, y0]]))

    def pixels(self, pts):
        return np.asarray(pts) @ self.matrix[:, :2].T + self.matrix[:, 2]

    def fill(self, pts, color):
        fixed = np.round(self.pixels(pts) * _FIX).astype(np.int32)
        cv2.fillPoly(self.img, [fixed], color, cv2.LINE_AA, _SHIFT)

    def stroke(self, curve, half_widths, color):
        self.fill(_stroke_outline(np.asarray(curve, np.float64), half_widths), color)

    def both(self, pts, color):
        """Fill a shape given for the right half of the face and its mirror image."""
        self.fill(pts, color)
        self.fill(_mirror(pts), color)

    def blob(self, cx, cy, rx, ry, base, color, strength, levels=4):
        """Soft spot: nested ellipses blending from `base` towards `color` by up to `strength`."""
        for i in range(levels):
            f = 1 - i / levels
            shade = _rgb(_mix(base, color, strength * (i + 1) / levels))
            self.fill(_ellipse(cx, cy, rx * f, ry * f, 32), shade)


# ------------------------------------------------------------------------------ identity-only base layer

def _draw_background(img, idn: _Identity):
    n = img.shape[0]
    axis = np.linspace(-1, 1, n)
    t = (np.cos(idn.bg_angle) * axis[None, :] + np.sin(idn.bg_angle) * axis[:, None]) * 0.5 + 0.5
    a, b = np.array(idn.bg_a), np.array(idn.bg_b)
    img[:] = np.round(a + (b - a) * t[..., None]).astype(np.uint8)


def _hair_outer(idn: _Identity, bottom):
    """Outline of the hair mass behind the head, from the left bottom over the top to the right bottom."""
    v = idn.hair_volume
    t = np.linspace(np.pi, 2 * np.pi, 40)
    rx, ry = idn.face_w + v, idn.face_h + v + 0.05
    bumps = 1 + (0.035 * np.sin(14 * t) if idn.hair_style == "curly" else 0.0)
    if idn.hair_style == "curly":
        rx, ry = rx + 0.08, ry + 0.06
    top = np.stack([rx * np.cos(t) * bumps, -0.02 + ry * np.sin(t) * bumps], axis=1)
    side_x = rx * (1.08 if idn.hair_style == "long" else 1.0)
    left = [[-side_x, bottom], [-side_x * 0.98, -0.02]]
    right = [[side_x * 0.98, -0.02], [side_x, bottom]]
    return np.concatenate([left, top, right])


def _hair_bottom(idn: _Identity):
    return {"short": 0.0, "long": 1.1, "bangs": 0.35, "curly": 0.3, "bald": -0.05}[idn.hair_style]


def _draw_body(cv: _Canvas, idn: _Identity):
    skin = idn.skin
    cv.fill(_ellipse(0, 1.5, 1.05, 0.62, 48), idn.cloth)
    neck_w = idn.face_w * 0.5
    neck = np.array([[-neck_w, 0.3], [neck_w, 0.3], [neck_w * 1.08, 1.0], [0.0, 1.15], [-neck_w * 1.08, 1.0]])
    cv.fill(neck, _shade(skin, 0.86))
    for side in (1, -1):  # ears sit behind the face oval, so only their outer halves show
        ear = _ellipse(side * idn.face_w * 0.97, -0.03, 0.075, 0.13, 32)
        cv.fill(ear, _shade(skin, 0.95))
        cv.stroke(_bezier((side * (idn.face_w + 0.02), -0.1), (side * (idn.face_w + 0.055), -0.03),
                          (side * (idn.face_w + 0.02), 0.05), 10), 0.008, _shade(skin, 0.78))


def _draw_hair_back(cv: _Canvas, idn: _Identity, ink=None):
    color = idn.hair if ink is None else ink
    if idn.hair_style == "bald":
        for side in (1, -1):  # a rim of short hair above the ears
            cv.fill(_ellipse(side * idn.face_w * 0.98, -0.2, 0.08, 0.16, 32), color)
        return
    cv.fill(_hair_outer(idn, _hair_bottom(idn)), color)


@functools.lru_cache(maxsize=64)
def _layers(identity: int, size: int):
    """Per (identity, size): the AU-independent supersampled base, its lit small version, light and mask."""
    idn = _identity_params(identity)
    base = np.empty((size * _SS, size * _SS, 3), np.uint8)
    _draw_background(base, idn)
    cv = _Canvas.posed(base, idn)
    _draw_hair_back(cv, idn)
    _draw_body(cv, idn)
    base.setflags(write=False)
    light = _light_field(idn, size)
    base_small = _apply_light(cv2.resize(base, (size, size), interpolation=cv2.INTER_AREA), light)
    mask = _compute_mask(idn, size)
    for a in (base_small, light, mask):
        a.setflags(write=False)
    return idn, base, base_small, light, mask


def _light_field(idn: _Identity, size):
    """Soft directional brightness gradient plus a faint vignette; depends on the identity only."""
    axis = np.linspace(-1, 1, size, dtype=np.float32)
    x, y = axis[None, :], axis[:, None]
    angle, strength = idn.light
    field = 1 + strength * (np.cos(angle) * x + np.sin(angle) * y) - 0.05 * (x * x + y * y)
    return field[..., None].astype(np.float32)


def _apply_light(img, light):
    return np.clip(img.astype(np.float32) * light + 0.5, 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------------------- AU-driven face

class _Expr:
    """The 17 AU intensities scaled to [0, 1], readable as attributes (e.g. `e.AU12`)."""

    def __init__(self, aus):
        self.__dict__.update(zip(AU_NAMES, (float(v) / AU_MAX for v in aus)))

    @property
    def jaw_drop(self):
        return _MAX_JAW_DROP * self.AU26


def _face_outline(idn: _Identity, jaw_drop, chin_raise, n=96):
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    x, y = idn.face_w * np.cos(t), idn.face_h * np.sin(t)
    low = np.clip(np.sin(t), 0, 1)
    x *= 1 - idn.jaw_taper * low ** 2  # the jaw narrows towards the chin
    ramp = _smoothstep((y - _JAW_HINGE_Y) / (idn.face_h - _JAW_HINGE_Y))
    y = y + jaw_drop * ramp - chin_raise * ramp ** 4
    return np.stack([x, y], axis=1)


def _draw_skin(cv: _Canvas, idn: _Identity, e: _Expr):
    outline = _face_outline(idn, e.jaw_drop, 0.025 * e.AU17)
    cv.fill(outline, _shade(idn.skin, 0.9))
    centre = np.array([0.0, 0.0])
    for f, shade in ((0.94, 0.95), (0.86, 0.985), (0.75, 1.0)):  # fake roundness: lighter towards the middle
        cv.fill(centre + (outline - centre) * f, _shade(idn.skin, shade))


def _brow_points(idn: _Identity, e: _Expr):
    """Inner end, arch control point and outer end of the brow on the right of the image."""
    inner = np.array([0.065 - 0.03 * e.AU04, _BROW_Y + 0.012 - 0.085 * e.AU01 + 0.06 * e.AU04])
    arch = np.array([idn.eye_x, _BROW_Y - 0.055 - 0.03 * e.AU01 - 0.06 * e.AU02 + 0.045 * e.AU04])
    outer = np.array([idn.eye_x + idn.eye_w + 0.05, _BROW_Y + 0.02 - 0.085 * e.AU02 + 0.025 * e.AU04])
    return inner, arch, outer


def _draw_brows(cv: _Canvas, idn: _Identity, e: _Expr):
    inner, arch, outer = _brow_points(idn, e)
    curve = _bezier(inner, arch, outer, 20)
    profile = np.linspace(1.0, 0.45, 20) * np.sin(np.linspace(0.35, np.pi - 0.25, 20)) ** 0.35
    cv.both(_stroke_outline(curve, idn.brow_thick * (1 + 0.15 * e.AU04) * profile), idn.brow_color)


def _draw_forehead(cv: _Canvas, idn: _Identity, e: _Expr):
    dark = _crease(idn.skin)
    for k, y in enumerate((-0.41, -0.475)):
        if e.AU01 > 0:  # central wrinkles, bowed up in the middle like a worried forehead
            half = 0.16 * (0.5 + 0.5 * e.AU01)
            curve = _bezier((-half, y + 0.01), (0, y - 0.03), (half, y + 0.01), 16)
            cv.stroke(curve, 0.0075 * e.AU01 * _taper(16), _rgb(_mix(idn.skin, dark, e.AU01)))
        if e.AU02 > 0:  # lateral wrinkles above the outer brows
            x0, x1 = 0.14 + 0.04 * k, 0.42 - 0.04 * k
            grow = 0.5 + 0.5 * e.AU02
            start = (x1 - (x1 - x0) * grow, y - 0.005)
            curve = _bezier(start, ((x0 + x1) / 2, y - 0.025), (x1, y + 0.025), 16)
            cv.both(_stroke_outline(curve, 0.0075 * e.AU02 * _taper(16)), _rgb(_mix(idn.skin, dark, e.AU02)))
    if e.AU04 > 0:  # vertical frown lines between the brows
        for x in (-0.03, 0.03):
            curve = _bezier((x * 1.3, -0.27), (x * 0.6, -0.21), (x * 0.8, -0.15), 12)
            cv.stroke(curve, 0.008 * e.AU04 * _taper(12), _rgb(_mix(idn.skin, dark, e.AU04)))


def _lid_heights(e: _Expr):
    """Upper and lower opening of the eye above and below the corner line, in face units."""
    upper = 0.055 * (1 + 1.1 * e.AU05) * (1 - 0.2 * e.AU07)
    lower = 0.045 * max(1 - 0.8 * e.AU07 - 0.4 * e.AU06, 0.08)
    closed = e.AU45
    return upper * (1 - closed) - lower * closed, lower


def _eye_curves(idn: _Identity, e: _Expr, n=24):
    """Upper and lower lid margins, as (n, 2) points, of the eye on the right of the image."""
    s = np.linspace(-1, 1, n)
    x = idn.eye_x + s * idn.eye_w
    corner_y = _EYE_Y - idn.eye_tilt * s  # outer corner (s = +1) a bit higher than the inner one
    bulge = (1 - s ** 2) ** 0.75 * (1 - 0.15 * s)  # the lid peak sits slightly towards the nose
    up, low = _lid_heights(e)
    lower_shape = (1 - s ** 2) ** (0.9 + 0.8 * e.AU07)  # a tightened lower lid is straighter
    return np.stack([x, corner_y - up * bulge], 1), np.stack([x, corner_y + low * lower_shape], 1)


def _draw_eye(cv: _Canvas, idn: _Identity, e: _Expr, side):
    upper, lower = _eye_curves(idn, e)
    flip = np.array([side, 1.0])
    upper, lower = upper * flip, lower * flip
    aperture = np.concatenate([upper, lower[::-1]])
    iris_c = np.array([side * idn.eye_x, _EYE_Y - 0.004])
    iris_r = 0.056
    _paint_eyeball(cv, idn, aperture, upper, iris_c, iris_r)
    lash = 0.006 + 0.006 * np.linspace(0, 1, len(upper)) ** 1.5
    cv.stroke(upper, lash if side > 0 else lash[::-1], _shade(idn.brow_color, 0.6))
    cv.stroke(lower, 0.003 * _taper(len(lower)), _shade(idn.skin, 0.8))
    _draw_eye_folds(cv, idn, e, side)


def _paint_eyeball(cv: _Canvas, idn, aperture, upper, iris_c, iris_r):
    """Sclera, iris, pupil and catch light, clipped to the lid opening with an anti-aliased mask."""
    pts = cv.pixels(np.concatenate([aperture, _ellipse(*iris_c, iris_r, iris_r, 8)]))
    x0, y0 = np.floor(pts.min(0)).astype(int) - 2
    x1, y1 = np.ceil(pts.max(0)).astype(int) + 3
    n = cv.img.shape[0]
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, n), min(y1, n)
    if x1 <= x0 or y1 <= y0:
        return
    roi = cv.img[y0:y1, x0:x1]
    mask = np.zeros(roi.shape[:2], np.uint8)
    cv.crop(mask, x0, y0).fill(aperture, 255)
    if not mask.any():  # a closed eye
        return
    eye = np.empty_like(roi)
    eye[:] = (238, 234, 228)
    sub = cv.crop(eye, x0, y0)
    sub.stroke(upper, 0.02, (196, 188, 184))  # shadow of the upper lid on the eyeball
    sub.fill(_ellipse(*iris_c, iris_r, iris_r, 36), _shade(idn.iris, 0.65))
    sub.fill(_ellipse(*iris_c, iris_r * 0.86, iris_r * 0.86, 36), idn.iris)
    sub.fill(_ellipse(*iris_c, iris_r * 0.42, iris_r * 0.42, 28), (18, 14, 14))
    sub.fill(_ellipse(iris_c[0] + 0.018, iris_c[1] - 0.02, 0.011, 0.011, 16), (250, 250, 250))
    m = mask[..., None].astype(np.uint16)
    roi[:] = ((eye * m + roi * (255 - m) + 127) // 255).astype(np.uint8)


def _draw_eye_folds(cv: _Canvas, idn: _Identity, e: _Expr, side):
    skin, dark = idn.skin, _crease(idn.skin)
    x, w, y = side * idn.eye_x, idn.eye_w, _EYE_Y
    up, low = _lid_heights(e)
    crease_y = y - max(up, 0.0) - 0.028 - 0.01 * e.AU05
    cv.stroke(_bezier((x - 0.8 * side * w, y - 0.02), (x, crease_y - 0.012), (x + side * w, y - 0.03), 16),
              0.004 * _taper(16), _rgb(_mix(skin, dark, 0.45)))
    bag_y = y + low + 0.03 - 0.012 * e.AU06
    bag = _bezier((x - 0.7 * side * w, bag_y - 0.012), (x, bag_y + 0.012),
                  (x + 0.8 * side * w, bag_y - 0.015), 16)
    cv.stroke(bag, (0.002 + 0.009 * e.AU07 + 0.004 * e.AU06) * _taper(16),
              _rgb(_mix(skin, dark, 0.15 + 0.7 * max(e.AU07, e.AU06))))
    if e.AU06 > 0:  # crow's feet fanning out from the outer corner
        corner = np.array([x + side * (w + 0.02), y])
        for ang in (-0.45, 0.0, 0.45):
            d = np.array([side * np.cos(ang), np.sin(ang)]) * (0.04 + 0.05 * e.AU06)
            line = _bezier(corner, corner + d * 0.5 + [0, 0.006], corner + d, 10)
            cv.stroke(line, 0.0055 * e.AU06 * _taper(10), _rgb(_mix(skin, dark, 0.9 * e.AU06)))


def _draw_cheeks(cv: _Canvas, idn: _Identity, e: _Expr):
    if e.AU06 <= 0:
        return
    rosy = _mix(_mix(idn.skin, (255, 255, 255), 0.22), (235, 120, 120), 0.22)
    for side in (1, -1):
        cx, cy = side * (idn.eye_x + 0.02), 0.1 - 0.05 * e.AU06
        cv.blob(cx, cy, 0.12 + 0.03 * e.AU06, 0.085 + 0.025 * e.AU06, idn.skin, rosy, 0.9 * e.AU06, 6)
        under = _bezier((cx - side * 0.06, cy + 0.1), (cx + side * 0.04, cy + 0.13),
                        (cx + side * 0.13, cy + 0.06), 14)  # lower edge of the rounded cheek
        shadow = _rgb(_mix(idn.skin, _shade(idn.skin, 0.8), 0.8 * e.AU06))
        cv.stroke(under, 0.006 * e.AU06 * _taper(14), shadow)


def _draw_nose(cv: _Canvas, idn: _Identity, e: _Expr):
    skin = idn.skin
    lift, flare = 0.06 * e.AU09, 1 + 0.35 * e.AU09
    tip_y = _NOSE_TIP_Y - 0.015 * e.AU09
    for side in (1, -1):  # shading along the sides of the bridge
        side_line = _bezier((side * 0.045, _EYE_Y), (side * 0.05, 0.0),
                            (side * idn.nose_w * 0.8, tip_y - 0.05), 14)
        cv.stroke(side_line, 0.009 * _taper(14), _shade(skin, 0.93))
    cv.fill(_ellipse(0, tip_y + 0.03, idn.nose_w * 1.15 * flare, 0.03, 32), _shade(skin, 0.88))
    cv.fill(_ellipse(0, tip_y, 0.04, 0.038, 32), _mix(skin, (255, 255, 255), 0.12))
    for side in (1, -1):
        wing_x = side * idn.nose_w * flare
        cv.stroke(_bezier((wing_x * 0.7, tip_y - 0.035 - lift), (wing_x * 1.35, tip_y + 0.005 - lift),
                          (wing_x * 0.75, tip_y + 0.04 - lift), 14), 0.0055 * _taper(14), _shade(skin, 0.72))
        nostril = _ellipse(wing_x * 0.55, tip_y + 0.04 - lift, 0.022 * flare, 0.011, 24, side * 0.25)
        cv.fill(nostril, (70, 40, 38))
    if e.AU09 > 0:
        _draw_nose_wrinkles(cv, idn, e)


def _draw_nose_wrinkles(cv: _Canvas, idn: _Identity, e: _Expr):
    color = _rgb(_mix(idn.skin, _crease(idn.skin, 0.6), e.AU09))
    bunched = _mix(idn.skin, (200, 110, 100), 0.3)  # the bunched skin of the bridge reddens a little
    cv.blob(0, -0.04, 0.06 + 0.02 * e.AU09, 0.06 + 0.02 * e.AU09, idn.skin, bunched, 0.7 * e.AU09, 4)
    for k, y in enumerate((-0.075, -0.045, -0.015)):  # short creases across the bridge, bowed upwards
        half = (0.03 + 0.008 * k) * (0.6 + 0.4 * e.AU09)
        crease = _bezier((-half, y + 0.006), (0, y - 0.01), (half, y + 0.006), 14)
        cv.stroke(crease, 0.006 * e.AU09 * _taper(14), color)
    for side in (1, -1):  # oblique creases from the bridge down towards the nose wings
        cv.stroke(_bezier((side * 0.05, -0.03), (side * 0.075, 0.0), (side * 0.085, 0.06), 12),
                  0.0055 * e.AU09 * _taper(12), color)


def _mouth(idn: _Identity, e: _Expr, n=33):
    """Curves of the lips as (x, upper outer, upper inner, lower inner, lower outer) arrays."""
    s = np.linspace(-1, 1, n)
    w = idn.mouth_w * (1 + 0.55 * e.AU20 + 0.2 * e.AU12 - 0.12 * e.AU14 - 0.2 * e.AU23 - 0.06 * e.AU26)
    corner = _MOUTH_Y - 0.1 * e.AU12 + 0.13 * e.AU15 + 0.03 * e.AU20 - 0.015 * e.AU14 + 0.25 * e.jaw_drop
    lower_drop = e.jaw_drop + 0.06 * e.AU25 + 0.06 * e.AU26
    upper_in = _MOUTH_Y - 0.05 * e.AU10 - 0.12 * lower_drop
    lower_in = _MOUTH_Y + lower_drop - 0.04 * e.AU17
    upper_in = min(upper_in, lower_in)  # a lower lip pushed up lifts the closed mouth with it
    thin = (1 - 0.75 * e.AU23) * (1 - 0.4 * e.AU20) * (1 - 0.2 * e.AU12)
    f_in = s ** 2 * (1 - 0.35 * e.AU10 * (1 - s ** 2))  # a raised upper lip goes up squarely, not as a point
    f_out = np.abs(s) ** 2.2
    up_in = upper_in * (1 - f_in) + corner * f_in
    lo_in = lower_in * (1 - s ** 2) + corner * s ** 2
    bow = 0.3 * np.exp(-(s / 0.13) ** 2)  # cupid's bow: the upper lip dips in the middle
    up_out = up_in - idn.lip_up * thin * (1 - f_out) * (1 - bow)
    lo_out = lo_in + idn.lip_low * thin * (1 + 0.35 * e.AU17) * (1 - f_out)
    return s * w, up_out, up_in, lo_in, lo_out


def _band(x, top, bottom):
    """Polygon between two curves y = top(x) and y = bottom(x)."""
    return np.concatenate([np.stack([x, top], 1), np.stack([x[::-1], bottom[::-1]], 1)])


def _draw_mouth(cv: _Canvas, idn: _Identity, e: _Expr):
    x, up_out, up_in, lo_in, lo_out = _mouth(idn, e)
    # Inside of the mouth, then tongue and teeth, each clipped to the opening by min/max with its
    # curves, so a closed mouth shows none of them and opening it reveals them gradually.
    flat = np.sqrt(np.clip(1 - (x / x[-1]) ** 2, 0, 1))
    cv.fill(_band(x, up_in, lo_in), (72, 22, 28))
    cv.fill(_band(x, np.maximum(lo_in - 0.06 * flat, up_in), lo_in), (168, 78, 84))
    teeth_bottom = np.minimum(up_in + 0.05 * flat ** 0.4, lo_in)
    cv.fill(_band(x, up_in, teeth_bottom), (236, 230, 218))
    cv.fill(_band(x, np.maximum(lo_in - 0.022 * flat ** 0.4, teeth_bottom), lo_in), (214, 206, 194))
    cv.stroke(np.stack([x, (up_in + lo_in) / 2], 1), 0.005 * _taper(len(x), 0.3), _shade(idn.lip, 0.45))
    cv.fill(_band(x, up_out, up_in), _shade(idn.lip, 0.92))
    cv.fill(_band(x, lo_in, lo_out), idn.lip)
    mid = slice(len(x) // 3, len(x) - len(x) // 3)  # highlight on the middle of the lower lip
    cv.stroke(np.stack([x, lo_in * 0.4 + lo_out * 0.6], 1)[mid], 0.006 * _taper(len(x) - 2 * (len(x) // 3)),
              _rgb(_mix(idn.lip, (255, 255, 255), 0.22)))
    corner = np.array([x[-1], up_out[-1]])
    for side in (1, -1):
        _draw_fold(cv, idn, e, corner * [side, 1], side)
        _draw_corner_marks(cv, idn, e, corner * [side, 1], side)
    if e.AU23 > 0:
        _draw_lip_tension(cv, idn, e, x, up_out, lo_out)


def _draw_fold(cv: _Canvas, idn: _Identity, e: _Expr, c, side):
    """Nasolabial fold from the nose wing to beside the mouth corner c; deepened by AU10 and AU12."""
    depth = min(0.2 + 0.55 * e.AU12 + 0.55 * e.AU10, 1.0)
    start = (side * (idn.nose_w + 0.05), _NOSE_TIP_Y - 0.01 - 0.02 * e.AU10)
    end = c + [side * (0.05 + 0.02 * e.AU12), 0.02]
    cv.stroke(_bezier(start, (side * (abs(c[0]) + 0.07), (start[1] + end[1]) / 2), end, 16),
              (0.004 + 0.005 * depth) * _taper(16), _rgb(_mix(idn.skin, _crease(idn.skin), depth * 0.75)))


def _draw_corner_marks(cv: _Canvas, idn: _Identity, e: _Expr, c, side):
    """Dimple (AU14), depressor lines (AU15) and stretch creases (AU20) beside the mouth corner c."""
    skin, dark = idn.skin, _crease(idn.skin)
    if e.AU14 > 0:  # dimple: a soft pit and a short crescent just outside the corner
        d = c + [side * 0.035, -0.003]
        cv.blob(d[0], d[1], 0.04 + 0.03 * e.AU14, 0.045 + 0.03 * e.AU14, skin, dark, 0.5 * e.AU14, 4)
        arc = _bezier(d + [-side * 0.01, -0.035], d + [side * 0.018, 0.0], d + [-side * 0.008, 0.035], 12)
        cv.stroke(arc, 0.009 * e.AU14 * _taper(12), _rgb(_mix(skin, dark, 0.95 * e.AU14)))
    if e.AU15 > 0:  # lines pulled down from the depressed corners
        cv.blob(c[0] + side * 0.01, c[1] + 0.06, 0.05, 0.06, skin, dark, 0.35 * e.AU15, 4)
        line = _bezier(c + [side * 0.02, 0.015], c + [side * 0.035, 0.04],
                       c + [side * 0.03, 0.04 + 0.05 * e.AU15], 12)
        cv.stroke(line, 0.005 * e.AU15 * _taper(12), _rgb(_mix(skin, dark, 0.6 * e.AU15)))
    if e.AU20 > 0:  # skin bunched beside the stretched corners
        crease = _bezier(c + [side * 0.03, -0.03], c + [side * 0.055, 0.0], c + [side * 0.035, 0.035], 12)
        cv.stroke(crease, 0.007 * e.AU20 * _taper(12), _rgb(_mix(skin, dark, 0.8 * e.AU20)))


def _draw_lip_tension(cv: _Canvas, idn: _Identity, e: _Expr, x, up_out, lo_out):
    """AU23: tense, slightly bulging skin along the lip borders."""
    mid = slice(4, len(x) - 4)
    color = _rgb(_mix(idn.skin, _crease(idn.skin), e.AU23))
    for border in (up_out[mid] - 0.012, lo_out[mid] + 0.012):
        cv.stroke(np.stack([x[mid], border], 1), 0.008 * e.AU23 * _taper(len(border)), color)


def _draw_chin(cv: _Canvas, idn: _Identity, e: _Expr):
    skin, dark = idn.skin, _crease(idn.skin)
    _, _, _, _, lo_out = _mouth(idn, e, 3)
    crease_y = lo_out[1] + 0.065 - 0.022 * e.AU17
    depth = 0.25 + 0.6 * e.AU17
    cv.stroke(_bezier((-0.09, crease_y + 0.01), (0, crease_y - 0.012), (0.09, crease_y + 0.01), 14),
              (0.004 + 0.005 * e.AU17) * _taper(14), _rgb(_mix(skin, dark, depth * 0.6)))
    chin_y = idn.face_h + e.jaw_drop - 0.025 * e.AU17
    boss_y = chin_y - 0.11 - 0.02 * e.AU17  # the chin boss: a highlight that rises and brightens
    cv.blob(0, boss_y, 0.1, 0.07 + 0.01 * e.AU17, skin, (255, 255, 255), 0.1 + 0.25 * e.AU17)
    if e.AU17 > 0:  # orange-peel dimpling of the raised chin boss
        for dx, dy in ((-0.035, -0.02), (0.03, -0.03), (0.0, 0.0), (-0.03, 0.025), (0.035, 0.02)):
            cv.fill(_ellipse(dx, chin_y - 0.11 + dy, 0.008 * e.AU17, 0.006 * e.AU17, 12),
                    _rgb(_mix(skin, dark, 0.35 * e.AU17)))


# ----------------------------------------------------------------------------------- front hair, glasses

def _hairline(idn: _Identity, n=33):
    x = np.linspace(-1, 1, n) * (idn.face_w + 0.02)
    u = x / idn.face_w
    if idn.hair_style == "bangs":  # a straight fringe with a slightly ragged edge
        y = -0.53 + 0.05 * u ** 4 + 0.008 * np.sin(25 * u)
    else:
        y = idn.hairline + (idn.hairline * 0.55 - idn.hairline) * u ** 2 + idn.hair_part * u * (1 - u ** 2)
    return np.stack([x, y], 1)


def _draw_hair_front(cv: _Canvas, idn: _Identity):
    if idn.hair_style == "bald":
        return
    line = _hairline(idn)
    v = idn.hair_volume + (0.08 if idn.hair_style == "curly" else 0.0)
    t = np.linspace(0, np.pi, 24)  # over the top, right to left
    top = np.stack([(idn.face_w + v) * np.cos(t), -0.02 - (idn.face_h + v + 0.05) * np.sin(t)], 1)
    cv.fill(np.concatenate([line, top[top[:, 1] < line[-1, 1]]]), idn.hair)
    cv.stroke(line, 0.006 * _taper(len(line)), _shade(idn.hair, 0.8))


def _draw_glasses(cv: _Canvas, idn: _Identity, ink=None):
    """Frames, temple arms and a glint on each lens; `ink` overrides all colours (for the mask)."""
    if idn.glasses is None:
        return
    color, half, squareness, rx, ry = idn.glasses
    color, glint_color = (ink, ink) if ink is not None else (color, (245, 245, 245))
    t = np.linspace(0, 2 * np.pi, 48, endpoint=False)
    cos, sin = np.cos(t), np.sin(t)
    ring = np.stack([rx * np.sign(cos) * np.abs(cos) ** (2 / squareness),
                     ry * np.sign(sin) * np.abs(sin) ** (2 / squareness)], 1)
    for side in (1, -1):
        centre = np.array([side * idn.eye_x, _EYE_Y + 0.005])
        frame = np.concatenate([ring, ring[:1]]) + centre
        cv.stroke(frame, half, color)
        glint = _bezier(centre + [-0.06, -0.03], centre + [-0.02, -0.07], centre + [0.04, -0.05], 8)
        cv.stroke(glint, 0.006 * _taper(8), glint_color)
        cv.stroke(np.array([centre + [side * rx, -0.02], [side * (idn.face_w + 0.02), -0.05]]), half, color)
    bridge_x = idn.eye_x - rx
    bridge = _bezier((-bridge_x, _EYE_Y - 0.01), (0, _EYE_Y - 0.04), (bridge_x, _EYE_Y - 0.01), 10)
    cv.stroke(bridge, half, color)


# ----------------------------------------------------------------------------------------------- masks

def _compute_mask(idn: _Identity, size):
    """Everything an AU can reach (the face at its maximal jaw drop), plus hair, ears and glasses."""
    img = np.zeros((size * _SS, size * _SS), np.uint8)
    cv = _Canvas.posed(img, idn)
    for drop in (0.0, _MAX_JAW_DROP):
        outline = _face_outline(idn, drop, 0.0)
        cv.fill(outline * [1.03, 1.0] + [0, 0.02], 255)  # a margin below the chin for its anti-aliased edge
    for side in (1, -1):
        cv.fill(_ellipse(side * idn.face_w * 0.97, -0.03, 0.09, 0.15, 32), 255)
    _draw_hair_back(cv, idn, ink=255)
    _draw_glasses(cv, idn, ink=255)
    small = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA) > 0
    return cv2.dilate(small.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)


def _lower_face(idn: _Identity, top):
    """The face below y = top, down to the chin at its lowest jaw drop."""
    outline = _face_outline(idn, _MAX_JAW_DROP, 0.0) * [1.03, 1.0] + [0, 0.02]
    outline[:, 1] = np.maximum(outline[:, 1], top)  # the oval is convex, so this cuts it with a line
    return [outline]


def _pair(cx, cy, rx, ry):
    """An ellipse on the right of the face and its mirror image on the left."""
    return [_ellipse(cx, cy, rx, ry, 32), _ellipse(-cx, cy, rx, ry, 32)]


def _region_shapes(idn: _Identity):
    """Per AU, polygons in face coordinates covering what it moves (both sides of the face)."""
    ex, ew, ey, my, mw = idn.eye_x, idn.eye_w, _EYE_Y, _MOUTH_Y, idn.mouth_w
    brows = _pair(ex - 0.01, -0.29, ew + 0.13, 0.13)
    eyes = _pair(ex, ey - 0.025, ew + 0.05, 0.12)
    # the nasolabial folds end beside the mouth corners, so every AU that moves a corner moves them too
    mouth = [_ellipse(0.0, my + 0.02, mw * 1.5 + 0.08, 0.14, 40)] + _pair(idn.nose_w + 0.13, 0.3, 0.16, 0.27)
    return {
        "AU01": brows + [_ellipse(0.0, -0.45, 0.22, 0.08, 32)],
        "AU02": brows + _pair(0.28, -0.45, 0.19, 0.08),
        "AU04": brows + [_ellipse(0.0, -0.21, 0.09, 0.1, 32)],
        "AU05": eyes,
        "AU06": eyes + _pair(ex + 0.02, 0.08, 0.2, 0.17) + _pair(ex + ew + 0.06, ey, 0.09, 0.09),
        "AU07": eyes,
        "AU09": [_ellipse(0.0, 0.02, 0.16, 0.2, 40)],
        "AU10": mouth,
        "AU12": mouth,
        "AU14": mouth,
        "AU15": mouth + _pair(mw + 0.03, my + 0.15, 0.1, 0.14),
        "AU17": mouth + _lower_face(idn, my),
        "AU20": mouth,
        "AU23": mouth,
        "AU25": mouth + _lower_face(idn, my),
        "AU26": mouth + _lower_face(idn, _JAW_HINGE_Y - 0.06),
        "AU45": eyes,
    }


# --------------------------------------------------------------------------------------------- public API

def _check_size(size):
    if int(size) != size or size < MIN_SIZE:
        raise ValueError(f"size must be an integer >= {MIN_SIZE}, got {size}")
    return int(size)


def _check_identity(identity):
    if int(identity) != identity or identity < 0:
        raise ValueError(f"identity must be a non-negative integer, got {identity}")
    return int(identity)


def _check_aus(aus):
    aus = np.asarray(aus, np.float64).reshape(-1)
    if aus.shape != (NUM_AUS,):
        raise ValueError(f"aus must have {NUM_AUS} values (order {', '.join(AU_NAMES)}), got {aus.shape[0]}")
    if not np.all(np.isfinite(aus)):
        raise ValueError(f"aus must be finite, got {aus}")
    return np.clip(aus, 0.0, AU_MAX)


def _render_unmasked(identity: int, aus, size: int):
    """The face drawn over the identity's base layer, before the background is pinned by the mask."""
    idn, base, _, light, _ = _layers(_check_identity(identity), _check_size(size))
    e = _Expr(_check_aus(aus))
    cv = _Canvas.posed(base.copy(), idn)
    _draw_skin(cv, idn, e)
    _draw_forehead(cv, idn, e)
    _draw_cheeks(cv, idn, e)
    _draw_nose(cv, idn, e)
    _draw_mouth(cv, idn, e)
    _draw_chin(cv, idn, e)
    for side in (1, -1):
        _draw_eye(cv, idn, e, side)
    _draw_brows(cv, idn, e)
    _draw_hair_front(cv, idn)
    _draw_glasses(cv, idn)
    return _apply_light(cv2.resize(cv.img, (size, size), interpolation=cv2.INTER_AREA), light)


def render_face(identity: int, aus, size: int = 128) -> np.ndarray:
    """RGB uint8 (size, size, 3) face of `identity` showing the 17 AU intensities `aus` (clipped to 0-5).

    Deterministic: the same (identity, aus, size) always gives the same bytes. Outside `face_mask` the
    pixels are the identity's background, whatever the AUs.
    """
    img = _render_unmasked(identity, aus, size)
    _, _, base_small, _, mask = _layers(int(identity), int(size))
    return np.where(mask[..., None], img, base_small)


def face_mask(identity: int, size: int = 128) -> np.ndarray:
    """Bool (size, size): True on the face, ears, hair, glasses and wherever any AU can change a pixel
    (including the chin at its lowest jaw drop). False pixels are background, neck and clothes, which no
    AU ever changes."""
    return _layers(_check_identity(identity), _check_size(size))[4].copy()


def au_regions(identity: int, size: int = 128) -> dict:
    """Per AU name, a bool (size, size) mask of the region that AU is documented to change."""
    idn = _layers(_check_identity(identity), _check_size(size))[0]
    regions = {}
    for name, shapes in _region_shapes(idn).items():
        img = np.zeros((size * _SS, size * _SS), np.uint8)
        cv = _Canvas.posed(img, idn)
        for polygon in shapes:
            cv.fill(polygon, 255)
        regions[name] = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA) > 127
    return regions


# Typical expressions as (core AUs, optional AUs); sample_aus draws these with shared strength.
_PATTERNS = (
    (("AU06", "AU12"), ("AU25",)),              # smile
    (("AU06", "AU12", "AU25"), ("AU26",)),      # laugh
    (("AU01", "AU02", "AU05"), ("AU26",)),      # surprise
    (("AU01", "AU04", "AU15"), ("AU17",)),      # sadness
    (("AU04", "AU07"), ("AU23", "AU05")),       # anger
    (("AU09", "AU10"), ("AU17", "AU04")),       # disgust
    (("AU01", "AU02", "AU04"), ("AU20",)),      # fear
    (("AU12", "AU14"), ()),                     # contempt / smirk
    (("AU25", "AU26"), ()),                     # talking, open mouth
    (("AU45",), ("AU06",)),                     # blink
)
# How often each AU shows up alone in real OpenFace output (lips part, blink and smile are common).
_SOLO_WEIGHTS = np.array([1.0, 0.8, 1.2, 0.6, 1.0, 1.0, 0.5, 0.7, 1.3, 0.8, 0.7, 1.0, 0.6, 0.6, 1.6, 1.0,
                          1.4])
_NEUTRAL_RATE = 0.12
_PATTERN_RATE = 0.45
_MAX_ACTIVE = 4


def sample_aus(rng: np.random.Generator, n: int) -> np.ndarray:
    """Float32 (n, 17) AU intensities on 0-5 that look like OpenFace output: about 12% neutral rows, the
    rest with 1-4 active AUs, often in a typical co-occurring pattern (smile, surprise, anger, ...)."""
    aus = np.zeros((n, NUM_AUS), np.float32)
    index = {name: i for i, name in enumerate(AU_NAMES)}
    for row in aus:
        u = rng.random()
        if u < _NEUTRAL_RATE:
            continue
        if u < _NEUTRAL_RATE + _PATTERN_RATE:
            core, optional = _PATTERNS[rng.integers(len(_PATTERNS))]
            names = list(core) + [a for a in optional if rng.random() < 0.5]
            active = [index[a] for a in names[:_MAX_ACTIVE]]
            strength = rng.uniform(0.5, 5.0)  # one expression strength, jittered per AU
            row[active] = strength * rng.uniform(0.6, 1.2, len(active))
        else:
            k = rng.integers(1, _MAX_ACTIVE + 1)
            active = rng.choice(NUM_AUS, k, replace=False, p=_SOLO_WEIGHTS / _SOLO_WEIGHTS.sum())
            row[active] = 0.1 + 4.9 * rng.beta(1.3, 1.8, k)
    return np.clip(aus, 0.0, AU_MAX).round(2)  # OpenFace reports two decimals


def make_synthetic_faces(n_identities: int, per_identity: int, size: int = 128, seed: int = 0,
                          identity_offset: int = 0) -> FaceSet:
    """n_identities * per_identity faces in memory, with AUs from `sample_aus(default_rng(seed), n)`.

    Identities are identity_offset .. identity_offset + n_identities - 1; ids read "syn_id00012_003"
    (identity 12, its 4th face). Use identity_offset=HELD_OUT_IDENTITY_OFFSET for an evaluation set
    whose people never appear in training.
    """
    if n_identities < 1 or per_identity < 1:
        raise UserError(None, f"synthetic data needs n_identities >= 1 and per_identity >= 1, "
                              f"got {n_identities} and {per_identity}")
    if size < MIN_SIZE:
        raise UserError(None, f"synthetic faces need size >= {MIN_SIZE}, got {size}")
    if identity_offset < 0:
        raise UserError(None, f"identity_offset must be >= 0, got {identity_offset}")
    n = n_identities * per_identity
    aus = sample_aus(np.random.default_rng(seed), n)
    images = np.empty((n, size, size, 3), np.uint8)
    ids = []
    for i in range(n):
        identity = identity_offset + i // per_identity
        images[i] = render_face(identity, aus[i], size)
        ids.append(f"syn_id{identity:05d}_{i % per_identity:03d}")
    name = (f"synthetic(n_identities={n_identities}, per_identity={per_identity}, size={size}, seed={seed}, "
            f"identity_offset={identity_offset})")
    return FaceSet(aus=aus, ids=ids, images=images, name=name)


def parse_au_assignments(text):
    """'12=4,25=2.5' (or 'AU12=4,...') -> a (17,) float32 vector on 0-5, other AUs 0."""
    aus = np.zeros(NUM_AUS, np.float32)
    for item in filter(None, (t.strip() for t in text.split(","))):
        name, _, value = item.partition("=")
        key = name.strip().upper()
        key = key if key.startswith("AU") else "AU" + key.zfill(2)
        if key not in AU_NAMES or not value:
            raise UserError(None, f"--aus: '{item}' is not AU=VALUE with AU one of {', '.join(AU_NAMES)}")
        try:
            aus[AU_NAMES.index(key)] = float(value)
        except ValueError:
            raise UserError(None, f"--aus: '{value}' is not a number") from None
        if not 0 <= aus[AU_NAMES.index(key)] <= AU_MAX:
            raise UserError(None, f"--aus: {key}={value} is outside 0-{AU_MAX:g}")
    return aus


def main(argv=None):
    """`python -m data.synthetic --identity 7 --aus 12=4,25=2 --out face.png`: render one synthetic face."""
    from data.images import write_image
    from utils.cli import ArgumentParser, run_main
    parser = ArgumentParser(prog="python -m data.synthetic", description=main.__doc__)
    face = parser.add_argument_group("face")
    face.add_argument("--identity", type=int, default=HELD_OUT_IDENTITY_OFFSET, metavar="N",
                      help=f"who, 0 or more (default: {HELD_OUT_IDENTITY_OFFSET}, the first held-out identity)")
    face.add_argument("--aus", default="", metavar="AU=VALUE,...",
                      help="AU intensities on 0-5, e.g. 12=4,25=2 (default: neutral)")
    face.add_argument("--size", type=int, default=128, metavar="N", help=f"image size in pixels, at least {MIN_SIZE}")
    output = parser.add_argument_group("output")
    output.add_argument("--out", required=True, metavar="FILE", help="output image file (PNG or JPEG)")
    args = parser.parse_args(argv)

    def render():
        if args.size < MIN_SIZE:
            raise UserError("--size", f"{args.size} is less than {MIN_SIZE} pixels")
        if args.identity < 0:
            raise UserError("--identity", f"{args.identity} is negative")
        write_image(args.out, render_face(args.identity, parse_au_assignments(args.aus), args.size))
        print(args.out)

    run_main(render)


if __name__ == "__main__":
    main()
