"""GANimation's generator and discriminator as TensorLayer static models (reference.md, tables G and D).

    G = get_generator(image_size=128, name="G")     # inputs [real (B,H,W,3) in [-1,1], y (B,17) in [0,1]]
    color, attention = G([real, y])                  # (B,H,W,3) tanh, (B,H,W,1) sigmoid
    D = get_discriminator(image_size=128, name="D")
    realness, aus = D(real)                          # (B,2,2,1) PatchGAN map, (B,17) linear

TensorLayer model names are global to the process: give each instance its own `name`.
Call `.train()` or `.eval()` once before calling a model (these networks behave the same in both modes:
instance norm has no running statistics and there is no dropout).
"""
import tensorflow as tf
import tensorlayer as tl

from data.constants import NUM_AUS
from models.layers import Conv, ConvTranspose, InstanceNorm, TileAUs


def leaky_relu(x):
    """LeakyReLU(0.01) as max(x, 0.01 x): the same values and gradients as tf.nn.leaky_relu, without
    Grappler's failing Conv+BiasAdd+LeakyRelu fusion under double backprop ("remapper failed" in TF 2.21)."""
    return tf.maximum(x, 0.01 * x)


def _residual_block(x, dim, affine, bias, dtype, name):
    """Conv3x3-IN-ReLU-Conv3x3-IN, plus the identity; no ReLU after the add."""
    h = Conv(dim, 3, 1, 1, bias=bias, compute_dtype=dtype, name=f"{name}_conv1")(x)
    h = InstanceNorm(affine, act=tf.nn.relu, name=f"{name}_in1")(h)
    h = Conv(dim, 3, 1, 1, bias=bias, compute_dtype=dtype, name=f"{name}_conv2")(h)
    h = InstanceNorm(affine, name=f"{name}_in2")(h)
    return tl.layers.Elementwise(tf.add, name=f"{name}_add")([x, h])


def get_generator(image_size=128, conv_dim=64, n_res=6, num_aus=NUM_AUS, norm_affine=True, conv_bias=False,
                  compute_dtype="float32", name="generator"):
    """The GANimation generator: (image, AUs) -> (color mask, attention mask).

    image_size: H = W, a multiple of 4. conv_dim: width of the first layer (64 in the paper).
    n_res: residual blocks in the bottleneck (6). num_aus: length of the AU vector (17).
    norm_affine, conv_bias: the official generator has affine instance norms and bias-free convs (the defaults);
    ganimation_replicate has plain instance norms and convs with biases (for importing its checkpoints).
    compute_dtype: "bfloat16" for mixed precision (float32 weights, bf16 convolutions, float32 outputs).
    Parameters at the defaults and 128 x 128: 8,471,296.
    """
    if image_size % 4:
        raise ValueError(f"generator image_size must be a multiple of 4, got {image_size}")
    n = name
    real = tl.layers.Input([None, image_size, image_size, 3], name=f"{n}_real")
    y = tl.layers.Input([None, num_aus], name=f"{n}_y")
    x = TileAUs(name=f"{n}_tile")([real, y])  # (B, H, W, 3 + num_aus)

    dt = compute_dtype
    x = Conv(conv_dim, 7, 1, 3, bias=conv_bias, compute_dtype=dt, name=f"{n}_stem")(x)
    x = InstanceNorm(norm_affine, act=tf.nn.relu, name=f"{n}_stem_in")(x)
    dim = conv_dim
    for i in (1, 2):  # down-sampling: H -> H/4, 64 -> 256 channels
        x = Conv(dim * 2, 4, 2, 1, bias=conv_bias, compute_dtype=dt, name=f"{n}_down{i}")(x)
        x = InstanceNorm(norm_affine, act=tf.nn.relu, name=f"{n}_down{i}_in")(x)
        dim *= 2
    for i in range(n_res):
        x = _residual_block(x, dim, norm_affine, conv_bias, dt, name=f"{n}_res{i}")
    for i in (1, 2):  # up-sampling: back to H, 256 -> 64 channels
        x = ConvTranspose(dim // 2, 4, 2, 1, bias=conv_bias, compute_dtype=dt, name=f"{n}_up{i}")(x)
        x = InstanceNorm(norm_affine, act=tf.nn.relu, name=f"{n}_up{i}_in")(x)
        dim //= 2

    heads = dict(bias=False, compute_dtype=dt, out_dtype=tf.float32)
    color = Conv(3, 7, 1, 3, act=tf.nn.tanh, name=f"{n}_color", **heads)(x)  # (B, H, W, 3)
    attention = Conv(1, 7, 1, 3, act=tf.nn.sigmoid, name=f"{n}_attention", **heads)(x)  # (B, H, W, 1)
    return tl.models.Model(inputs=[real, y], outputs=[color, attention], name=n)


def get_discriminator(image_size=128, conv_dim=64, n_layers=6, num_aus=NUM_AUS, compute_dtype="float32",
                      name="discriminator"):
    """The GANimation critic: image -> (realness map, AU estimate).

    Six Conv4x4-s2 + LeakyReLU(0.01) layers (conv_dim doubling each time), then two bias-free heads on the
    last feature map: a 3 x 3 critic head -> (B, H/2^n, W/2^n, 1), and an AU head whose kernel covers the
    whole map -> (B, num_aus), linear. image_size must be a multiple of 2 ** n_layers.
    compute_dtype: "bfloat16" for mixed precision (float32 weights and outputs).
    Parameters at the defaults and 128 x 128: 44,860,352.
    """
    if image_size % (2 ** n_layers):
        raise ValueError(f"discriminator image_size must be a multiple of {2 ** n_layers}, got {image_size}")
    n = name
    real = tl.layers.Input([None, image_size, image_size, 3], name=f"{n}_x")
    x, dim = real, conv_dim
    for i in range(n_layers):
        # The last trunk conv sees a 4 x 4 map and holds most of D's weights: run it as a matmul.
        tiny_map = image_size // 2 ** i <= 4
        x = Conv(dim, 4, 2, 1, bias=True, act=leaky_relu, as_matmul=tiny_map, compute_dtype=compute_dtype,
                 name=f"{n}_conv{i}")(x)
        dim *= 2
    heads = dict(bias=False, compute_dtype=compute_dtype, out_dtype=tf.float32)
    realness = Conv(1, 3, 1, 1, name=f"{n}_critic", **heads)(x)  # (B, h, w, 1)
    k = image_size // 2 ** n_layers
    aus = Conv(num_aus, k, 1, 0, as_matmul=True, name=f"{n}_aus", **heads)(x)  # (B, 1, 1, num_aus)
    aus = tl.layers.Reshape([-1, num_aus], name=f"{n}_aus_flat")(aus)  # (B, num_aus), never squeeze()
    return tl.models.Model(inputs=real, outputs=[realness, aus], name=n)


def count_parameters(model):
    """Number of scalars in the model's trainable weights."""
    return int(sum(int(tf.size(w)) for w in model.trainable_weights))
