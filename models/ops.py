"""The shape-sensitive steps of GANimation's networks, each written once: tiling the AUs over the image and
composing the output. (The pixel and AU scales are data/scales.py.)
"""
import tensorflow as tf


def tile_aus(images, aus):
    """Concatenate the AU vector, tiled over every pixel, to the image channels.

    images: (B, H, W, C); aus: (B, K). Returns (B, H, W, C + K): channel C + k holds aus[:, k] everywhere.
    """
    shape = tf.shape(images)
    maps = tf.tile(aus[:, tf.newaxis, tf.newaxis, :], [1, shape[1], shape[2], 1])  # (B, H, W, K)
    return tf.concat([images, tf.cast(maps, images.dtype)], axis=-1)


def compose(attention, image, color):
    """GANimation's Eq. 1 as the official code computes it: `A * I_src + (1 - A) * C`.

    attention: (B, H, W, 1) in [0, 1], A = 1 keeps the input pixel and A = 0 takes the color mask.
    image, color: (B, H, W, 3) in [-1, 1].
    """
    return attention * image + (1.0 - attention) * color
