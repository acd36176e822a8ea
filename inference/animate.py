"""Animations and videos: interpolated AUs, and GIF / MP4 files written atomically.

    weights = frame_weights(12, pingpong=True)            # 0 ... 1 ... back towards 0
    aus = interpolate(y_src, y_tgt, weights)              # a * y_tgt + (1 - a) * y_src per frame
    write_gif("out/face_happy.gif", frames, fps=12)
    with Mp4Writer("out/face_happy.mp4", fps=12) as video: video.write(frame) ...

MP4s use OpenCV's writer with the `mp4v` codec (MPEG-4 Part 2, in every opencv-python wheel). Its encoder needs
even sides: a frame of odd width or height gets its last column or row repeated. GIFs use Pillow, adaptive
palette per frame. infer.py shrinks frames to at most VIDEO_MAX_SIDE pixels a side (`fit_side`). Both kinds of
file are written to a temporary file in the output folder and renamed into place when complete, so an error or
Ctrl-C leaves no half-written file.
"""
import io
import os
import tempfile

import cv2
import numpy as np

from utils.errors import UserError
from utils.files import atomic_write_bytes

VIDEO_MAX_SIDE = 1280  # animation and video frames are shrunk to at most this many pixels a side


def frame_weights(n, pingpong=False):
    """n interpolation weights from 0 (the source expression) to 1 (the target), evenly spaced; with pingpong,
    then back down, the turning frame and the starting frame not repeated (a seamless loop of 2n - 2 frames)."""
    if n < 2:
        raise UserError("--animate", f"needs at least 2 frames, got {n}")
    a = np.linspace(0.0, 1.0, n, dtype=np.float32)
    return np.concatenate([a, a[-2:0:-1]]) if pingpong else a


def interpolate(y_src, y_tgt, weights):
    """(17,) or (F, 17) source and target AUs -> (len(weights), ..., 17): a * y_tgt + (1 - a) * y_src."""
    a = np.asarray(weights, np.float32).reshape((-1,) + (1,) * np.ndim(y_src))
    return (a * np.asarray(y_tgt, np.float32) + (1 - a) * np.asarray(y_src, np.float32)).astype(np.float32)


def fit_side(image, max_side):
    """Shrink an image (area averaging) so that its longer side is at most max_side; None: unchanged."""
    h, w = image.shape[:2]
    if not max_side or max(h, w) <= max_side:
        return image
    scale = max_side / max(h, w)
    return cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)


def even_frame(frame):
    """Repeat the last row / column of a frame with an odd side (mp4v needs even sides)."""
    h, w = frame.shape[:2]
    if h % 2 or w % 2:
        frame = cv2.copyMakeBorder(frame, 0, h % 2, 0, w % 2, cv2.BORDER_REPLICATE)
    return frame


def write_gif(path, frames, fps):
    """uint8 RGB frames (all one size) -> an endlessly looping GIF."""
    from PIL import Image
    images = [Image.fromarray(np.ascontiguousarray(f)) for f in frames]
    buffer = io.BytesIO()
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:],
                   duration=max(20, round(1000 / fps)), loop=0)
    atomic_write_bytes(path, buffer.getvalue())


class Mp4Writer:
    """Frames in (uint8 RGB, one size), an MP4 out at `fps`; the file appears only when closed without error."""

    def __init__(self, path, fps):
        self.path, self.fps = path, float(fps)
        folder = os.path.dirname(os.path.abspath(path))
        self._new_folder = None if os.path.isdir(folder) else folder
        os.makedirs(folder, exist_ok=True)
        fd, self.tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".mp4", dir=folder)
        os.close(fd)
        self._writer, self._size = None, None
        self.frames = 0

    def write(self, frame):
        frame = even_frame(np.asarray(frame, np.uint8))
        size = (frame.shape[1], frame.shape[0])
        if self._writer is None:
            self._writer = cv2.VideoWriter(self.tmp, cv2.VideoWriter_fourcc(*"mp4v"), self.fps, size)
            if not self._writer.isOpened():
                raise UserError(self.path, "OpenCV cannot write MP4 (mp4v) files here")
            self._size = size
        if size != self._size:
            raise ValueError(f"frame size {size} differs from the first frame's {self._size}")
        self._writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        self.frames += 1

    def close(self, keep=True):
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        if keep and self.frames:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(self.tmp, 0o666 & ~umask)  # mkstemp makes the file private; a finished video is not
            os.replace(self.tmp, self.path)
        else:
            if os.path.exists(self.tmp):
                os.remove(self.tmp)
            if self._new_folder and not os.listdir(self._new_folder):
                os.rmdir(self._new_folder)  # made for this file: leave no trace of a failed video

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *rest):
        self.close(keep=exc_type is None)


def write_mp4(path, frames, fps):
    with Mp4Writer(path, fps) as video:
        for frame in frames:
            video.write(frame)
