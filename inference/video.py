"""Video reenactment: the AUs of each frame of a driving video drive the faces of a source photo.

    info = open_driver("driver.mp4")                     # fps, frame count, size; UserError if unreadable
    reenact(model, photo, info, "out/face_driver.mp4", y_src)

Each driver frame's AUs are the discriminator's AU head on the frame's largest face (found and aligned as the
source's faces are), or the rows of an OpenFace per-frame CSV (`FeatureExtraction` output: its `frame` column,
1-based, says which frame a row belongs to; rows with success 0 are frames without a face). A frame with no
face reuses the last AUs; frames before the first face get the source's own AUs (the source about as it is).
The MP4 has one frame per driver frame, at the driver's frame rate.
"""
from dataclasses import dataclass

import cv2
import numpy as np

from utils.errors import UserError

CHUNK = 16  # driver frames read, analysed and edited together


def _capture(path):
    """cv2.VideoCapture(path), with FFmpeg's own messages ("moov atom not found" for a file that is no video)
    kept off the terminal: a bad driver gets one line from open_driver. OpenCV reads OPENCV_FFMPEG_LOGLEVEL
    when FFmpeg first opens a file; -8 is FFmpeg's AV_LOG_QUIET. GANIMATION_TF_VERBOSE=1 shows everything."""
    import os
    if not os.environ.get("GANIMATION_TF_VERBOSE"):
        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    from utils.cli import quiet_native_stderr
    with quiet_native_stderr():  # OpenCV's own warnings about the file
        return cv2.VideoCapture(path)


@dataclass
class Driver:
    path: str
    fps: float
    frames: int        # as the container reports it (used for the progress bar; may be approximate)
    width: int
    height: int


def open_driver(path):
    """Check that `path` is a video OpenCV can read (and read its first frame) -> Driver."""
    import os
    if not os.path.exists(path):
        raise UserError(path, "does not exist")
    if os.path.isdir(path):
        raise UserError(path, "is a folder, not a video")
    capture = _capture(path)
    try:
        ok, frame = capture.read() if capture.isOpened() else (False, None)
        if not ok or frame is None:
            raise UserError(path, "is not a readable video (OpenCV could not decode a frame)")
        fps = capture.get(cv2.CAP_PROP_FPS)
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    finally:
        capture.release()
    if not np.isfinite(fps) or not 0 < fps <= 1000:
        raise UserError(path, f"the video reports no usable frame rate ({fps})")
    return Driver(path, float(fps), max(count, 1), frame.shape[1], frame.shape[0])


def read_frames(path, chunk=CHUNK):
    """The video's frames as lists of up to `chunk` uint8 RGB arrays."""
    capture = _capture(path)
    try:
        frames = []
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
            if len(frames) == chunk:
                yield frames
                frames = []
        if frames:
            yield frames
    finally:
        capture.release()


def csv_frame_aus(path):
    """An OpenFace per-frame CSV -> {0-based frame index: float32 (17,)} for the frames with a face.
    Without a `frame` column, row k is frame k."""
    from data.aus import read_au_rows
    rows = read_au_rows(path, extra=("frame",))
    if "frame" not in rows.extra:
        return dict(enumerate(rows.aus))
    table = {}
    for text, aus, line in zip(rows.extra["frame"], rows.aus, rows.lines):
        try:
            number = int(float(text))
        except ValueError:
            raise UserError(path, f"{line}: frame {text!r} is not a number") from None
        if number < 1:
            raise UserError(path, f"{line}: frame {number}: OpenFace numbers frames from 1")
        table[number - 1] = aus
    return table


def estimate_frame_aus(model, frames, margin, min_confidence, batch_size=16):
    """The AU head on each frame's largest face -> list of float32 (17,), or None for a frame without a face."""
    from data.faces import align_face, detect_faces
    from inference.edit import estimate_aus
    crops, where = [], []
    for k, frame in enumerate(frames):
        faces = detect_faces(frame, min_confidence=min_confidence)
        if faces:
            crops.append(align_face(frame, faces[0], model.image_size, margin)[0])
            where.append(k)
    result = [None] * len(frames)
    if crops:
        for k, aus in zip(where, estimate_aus(model, np.stack(crops), batch_size)):
            result[k] = aus
    return result


def fill_missing(found, last):
    """Per-frame AUs from per-frame findings (float32 (17,), or None for a frame without a face): a None reuses
    the AUs before it, the first ones reuse `last` ((F, 17), one row per source face). -> (rows, new last)."""
    rows = []
    for aus in found:
        if aus is not None:
            last = np.broadcast_to(np.asarray(aus, np.float32), np.shape(last))
        rows.append(last)
    return rows, last


def reenact(model, photo, driver, out_path, y_src, frame_aus=None, aus_path=None, margin=0.1, min_confidence=0.9,
            batch_size=16, progress=True, max_side=None):
    """Write the MP4 of `photo` (inference.photo.Photo) driven by `driver` (open_driver) to out_path.

    y_src: (F, 17) the source faces' own AUs (used until the driver shows a face). frame_aus: a
    csv_frame_aus table (read from aus_path), or None to estimate each frame's AUs. max_side: larger frames
    are shrunk to it.
    Returns {"frames": n, "without_face": m}; UserError (and no file) when no driver frame has a face."""
    from inference.animate import Mp4Writer, fit_side
    from inference.edit import edit_pairs
    from inference.photo import paste_back
    from utils.progress import progress_bar
    n_faces = len(photo.faces)
    real = np.stack([f.real for f in photo.faces])
    last = np.asarray(y_src, np.float32)            # (F, 17): what a frame without a face gets
    done = without = 0
    seen_face = False
    bar = progress_bar(driver.frames, "reenacting", enabled=progress)
    with Mp4Writer(out_path, driver.fps) as video:
        for frames in read_frames(driver.path):
            if frame_aus is None:
                found = estimate_frame_aus(model, frames, margin, min_confidence, batch_size)
            else:
                found = [frame_aus.get(done + k) for k in range(len(frames))]
            rows, last = fill_missing(found, last)
            without += sum(aus is None for aus in found)
            seen_face = seen_face or any(aus is not None for aus in found)
            out = edit_pairs(model, np.tile(real, (len(frames), 1, 1, 1)), np.concatenate(rows), batch_size)
            fakes = out["images"].reshape((len(frames), n_faces) + real.shape[1:])
            for k in range(len(frames)):
                video.write(fit_side(paste_back(photo, list(fakes[k])), max_side))
            done += len(frames)
            bar.update(len(frames))
        bar.total = max(bar.total, done)
        bar.close()
        if not seen_face:
            if frame_aus is None:
                raise UserError(driver.path, f"no face found in any of its {done} frames")
            raise UserError(aus_path, f"no row for any of the driver's {done} frames")
    return {"frames": done, "without_face": without}
