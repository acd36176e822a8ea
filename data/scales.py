"""Pixels and AUs on the networks' scales, each mapping written once.

Pixels: images are uint8 [0, 255] on disk and float32 [-1, 1] inside the networks.
AUs: OpenFace intensities on [0, 5] outside, divided by 5 (so [0, 1]) inside the networks.
"""
import tensorflow as tf

from data.constants import AU_MAX


def to_model_pixels(images_uint8):
    """uint8 [0, 255] (B, H, W, 3) -> float32 [-1, 1]."""
    return tf.cast(images_uint8, tf.float32) / 127.5 - 1.0


def to_uint8_pixels(images):
    """float [-1, 1] (B, H, W, 3) -> uint8 [0, 255], rounded and clipped."""
    return tf.cast(tf.clip_by_value(tf.round((images + 1.0) * 127.5), 0.0, 255.0), tf.uint8)


def to_model_aus(aus):
    """AU intensities on OpenFace's [0, 5] scale -> the networks' [0, 1] scale."""
    return tf.cast(aus, tf.float32) / AU_MAX


def to_openface_aus(aus):
    """The networks' [0, 1] AU scale -> OpenFace's [0, 5]."""
    return aus * AU_MAX
