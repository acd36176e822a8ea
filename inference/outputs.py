"""What infer.py and the web page make of photos: named results (`edit_photos` yields an `Edit` per photo and
target, as arrays), and the one writer that names their files (`write_edit`, `write_face_crops`).

    for edit in edit_photos(model, [(photo, "face")], targets.aus, targets.labels, Options(strip=True)):
        edit.image, edit.attention, edit.strip, edit.crops, edit.frames      # arrays (None when not asked for)
        write_edit(edit, "out", fps=12)                                       # out/face_happy.png, ..._strip.png

Files, for a photo named `face` and a target labelled `happy`:
    face_happy.png              the photo with every chosen face edited and pasted back (or the edited crop)
    face_happy.gif / .mp4       with animate=N: source expression -> target in N frames (and back: pingpong)
    face_happy_attention.png    save_attention: the attention mask at the output's size (white keeps the input)
    face_happy_strip.png        strip: one row per face: input | attention | color | output
    face_happy_face1.png        save_crops: each face's edit (and face_face1.png, its aligned input crop)
    face_<driver>.mp4           a photo driven by a video (inference/video.py)
With animate, the attention, strip and crops show the full target (the animation's last forward frame).
Each file is written atomically (temporary file, then rename).
"""
import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import numpy as np

from data.faces import DEFAULT_MARGIN
from inference.animate import VIDEO_MAX_SIDE, fit_side


@dataclass
class Options:
    out: str = "out"
    choice: object = "all"            # "all" or 1-based face numbers (inference.photo.parse_face_choice)
    detect: object = None             # None: auto, True: always search for faces, False: never (photo.py)
    margin: float = DEFAULT_MARGIN
    min_confidence: float = 0.9
    feather: float = 0.08
    save_attention: bool = False
    save_crops: bool = False
    strip: bool = False
    animate: int = 0                  # frames from source to target; 0 = still images
    pingpong: bool = False
    fps: float = 12.0
    batch_size: int = 16
    progress: bool = True


@dataclass
class Edit:
    """One photo edited to one target, as arrays (uint8): what `write_edit` turns into files."""
    stem: str                                 # the photo's name in the file names
    label: str                                # the target's name
    image: Optional[np.ndarray] = None        # a still (H, W, 3): the photo with its faces pasted back, or the crop
    frames: Optional[List[np.ndarray]] = None  # with animate: the animation's frames instead of `image`
    attention: Optional[np.ndarray] = None    # save_attention: gray (H, W) at the output's size
    strip: Optional[np.ndarray] = None        # strip: (F * S, 4 * S, 3), input | attention | color | output
    crops: Dict[int, np.ndarray] = field(default_factory=dict)  # save_crops: face number -> edited crop (S, S, 3)


def source_aus(model, photos, rows, rows_path, batch_size=16):
    """y_src for every face of every photo: the --src-aus rows when given, else the AU head's estimate."""
    from inference.edit import estimate_aus
    from inference.targets import source_aus_for
    if rows is not None:
        return [source_aus_for(rows, len(p.faces), rows_path) for p in photos]
    counts = [len(p.faces) for p in photos]
    estimated = estimate_aus(model, np.stack([f.real for p in photos for f in p.faces]), batch_size)
    return np.split(estimated, np.cumsum(counts)[:-1])


def requests(photo, y_tgt, y_src, weights):
    """The (crop, AUs) pairs one photo needs, ordered target, frame, face: (P, S, S, 3), (P, 17).
    y_src None: still images (one frame, the target itself)."""
    real = np.stack([f.real for f in photo.faces])                          # (F, S, S, 3)
    if y_src is None:
        aus = np.repeat(y_tgt[:, None, None, :], len(photo.faces), axis=2)   # (T, 1, F, 17)
    else:
        from inference.animate import interpolate
        aus = np.stack([interpolate(y_src, t, weights) for t in y_tgt])      # (T, K, F, 17)
    n = aus.shape[0] * aus.shape[1]
    return np.tile(real, (n, 1, 1, 1)), aus.reshape(-1, 17)


def render(photo, stem, labels, out, weights, options):
    """Yield an Edit per target `labels` of one photo; `out` holds the model's outputs shaped (T, K, F, ...)."""
    from inference.photo import paste_attention, paste_back, strip
    last = 0 if weights is None else int(np.argmax(weights))  # the full target (the last forward frame)
    for t, label in enumerate(labels):
        fakes = out["images"][t]                                              # (K, F, S, S, 3)
        edit = Edit(stem, label)
        if weights is None:
            edit.image = paste_back(photo, list(fakes[0]), options.feather)
        else:
            edit.frames = [fit_side(paste_back(photo, list(f), options.feather), VIDEO_MAX_SIDE) for f in fakes]
        if options.save_attention:
            edit.attention = paste_attention(photo, list(out["attention"][t, last]), options.feather)
        if options.strip:
            edit.strip = np.concatenate([strip(face.real, out["attention"][t, last, f], out["color"][t, last, f],
                                               fakes[last, f]) for f, face in enumerate(photo.faces)], axis=0)
        if options.save_crops:
            edit.crops = {face.number: fakes[last, f] for f, face in enumerate(photo.faces)}
        yield edit


def edit_photos(model, batch, y_tgt, labels, options, rows=None, rows_path=None):
    """Edit a group of (photo, stem) in one series of batches; yield each Edit as soon as its batch is done. The
    targets are taken a few at a time (about options.batch_size crops per model call), so what is in memory is
    one batch of crops and its outputs, however many targets there are. rows: the source's own AUs (--src-aus),
    where animations start (default: estimated by the model's AU head)."""
    from inference.animate import frame_weights
    from inference.edit import edit_pairs
    photos = [p for p, _ in batch]
    weights = frame_weights(options.animate, options.pingpong) if options.animate else None
    frames = 1 if weights is None else len(weights)
    y_src = [None] * len(photos)
    if options.animate:
        y_src = source_aus(model, photos, rows, rows_path, options.batch_size)
    per_target = frames * sum(len(p.faces) for p in photos)  # crops one target needs for the whole group
    step = max(1, options.batch_size // per_target)
    for first in range(0, len(y_tgt), step):
        chunk = y_tgt[first:first + step]
        pairs = [requests(p, chunk, s, weights) for p, s in zip(photos, y_src)]
        out = edit_pairs(model, np.concatenate([r for r, _ in pairs]), np.concatenate([a for _, a in pairs]),
                         options.batch_size)
        start = 0
        for (photo, stem), (real, _) in zip(batch, pairs):
            shape = (len(chunk), frames, len(photo.faces))
            part = {k: v[start:start + len(real)].reshape(shape + v.shape[1:]) for k, v in out.items()}
            start += len(real)
            yield from render(photo, stem, labels[first:first + step], part, weights, options)


# --- the writer: the one place that names files ------------------------------------------------------------

def write_edit(edit, out, fps):
    """Write an Edit's files into the folder `out`; returns their paths, in the order written."""
    base = os.path.join(out, f"{edit.stem}_{edit.label}")
    if edit.frames is None:
        files = [(base + ".png", "png", edit.image)]
    else:
        files = [(base + ".gif", "gif", edit.frames), (base + ".mp4", "mp4", edit.frames)]
    if edit.attention is not None:
        files.append((base + "_attention.png", "png", edit.attention))
    if edit.strip is not None:
        files.append((base + "_strip.png", "png", edit.strip))
    files += [(f"{base}_face{number}.png", "png", crop) for number, crop in edit.crops.items()]
    for path, kind, payload in files:
        write_file(path, kind, payload, fps)
    return [path for path, _, _ in files]


def write_face_crops(photo, stem, out):
    """With save_crops: each face's aligned input crop, `<stem>_face<n>.png`; returns the paths."""
    paths = []
    for face in photo.faces:
        paths.append(os.path.join(out, f"{stem}_face{face.number}.png"))
        write_file(paths[-1], "png", face.real, None)
    return paths


def video_path(out, stem, driver):
    """The MP4 of a photo driven by the video `driver`: `<stem>_<driver name>.mp4`."""
    return os.path.join(out, f"{stem}_{os.path.splitext(os.path.basename(driver))[0]}.mp4")


def count_outputs(images, targets, options):
    """(files the writer will write, whether that is a lower bound): per image and target the edit (.png, or .gif
    and .mp4), and with the options its attention, strip and per-face crops (counted as one face per image)."""
    per_edit = (2 if options.animate else 1) + options.save_attention + options.strip + options.save_crops
    return images * (targets * per_edit + options.save_crops), options.save_crops


def write_file(path, kind, payload, fps):
    """One file: "png" (an image), "gif" or "mp4" (frames at fps)."""
    from data.images import write_image
    from inference.animate import write_gif, write_mp4
    if kind == "png":
        write_image(path, payload)
    elif kind == "gif":
        write_gif(path, payload, fps)
    else:
        write_mp4(path, payload, fps)
