"""GANimation's generator and discriminator as TensorLayer static models (docs/method.md, "Generator" and "Discriminator").

    G = get_generator(image_size=128, name="G")     # inputs [real (B,H,W,3) in [-1,1], y (B,17) in [0,1]]
    color, attention = G([real, y])                  # (B,H,W,3) tanh, (B,H,W,1) sigmoid
    G = get_generator(128, conditioning="adain", name="G_adain")   # the same call, y drives AdaIN layers
    D = get_discriminator(image_size=128, name="D")
    realness, aus = D(real)                          # (B,2,2,1) PatchGAN map, (B,17) linear
    G, D = build_networks(NetworkConfig(image_size=64))   # both, from one configuration (models/config.py)

TensorLayer model names are global to the process: give each instance its own `name`.
Call `.train()` or `.eval()` once before calling a model (these networks behave the same in both modes:
instance norm has no running statistics and there is no dropout).
"""
import tensorflow as tf
import tensorlayer as tl

from data.constants import CONDITIONINGS, NUM_AUS
from models.layers import ZERO_INIT, AdaIN, Conv, ConvTranspose, InstanceNorm, TileAUs

# The only layers whose weights depend on the number of labels (models/transfer.py): the AdaIN generator's
# first embedding layer, and the discriminator's AU head (and its projection head with --d-projection).
G_LABEL_LAYER = "embed1"
D_LABEL_LAYER = "aus"
D_LABEL_LAYERS = (D_LABEL_LAYER, "projection")


def leaky_relu(x):
    """LeakyReLU(0.01) as max(x, 0.01 x): the same values and gradients as tf.nn.leaky_relu, without
    Grappler's failing Conv+BiasAdd+LeakyRelu fusion under double backprop ("remapper failed" in TF 2.21)."""
    return tf.maximum(x, 0.01 * x)


def _residual_block(x, dim, norm, bias, dtype, name):
    """Conv3x3-IN-ReLU-Conv3x3-IN, plus the identity; no ReLU after the add. norm(h, name, act) makes the IN."""
    h = Conv(dim, 3, 1, 1, bias=bias, compute_dtype=dtype, name=f"{name}_conv1")(x)
    h = norm(h, f"{name}_in1", tf.nn.relu)
    h = Conv(dim, 3, 1, 1, bias=bias, compute_dtype=dtype, name=f"{name}_conv2")(h)
    h = norm(h, f"{name}_in2", None)
    return tl.layers.Elementwise(tf.add, name=f"{name}_add")([x, h])


def _add_clipped(a, b, name=None):
    return tf.clip_by_value(a + b, -1.0, 1.0)


def _label_embedding(y, dim, name):
    """The AdaIN generator's domain embedding: labels (B, K) -> (B, dim), two fully connected layers with
    LeakyReLU(0.01), He-initialised so that the embedding starts at the scale of its input. Only the first
    layer's weights depend on K (G_LABEL_LAYER)."""
    h = y
    for i in (1, 2):
        fan_in = int(h.shape[-1])
        h = tl.layers.Dense(dim, act=leaky_relu, W_init=tl.initializers.random_normal(stddev=(2.0 / fan_in) ** 0.5),
                            b_init=ZERO_INIT, name=f"{name}_embed{i}")(h)
    return h


def get_generator(image_size=128, conv_dim=64, n_res=6, num_aus=NUM_AUS, norm_affine=True, conv_bias=False,
                  conditioning="tile", adain_dim=64, compute_dtype="float32", name="generator", color_residual=False):
    """The GANimation generator: (image, AUs) -> (color mask, attention mask).

    image_size: H = W, a multiple of 4. conv_dim: width of the first layer (64 in the paper).
    n_res: residual blocks in the bottleneck (6). num_aus: length of the label vector (the 17 AUs).
    norm_affine, conv_bias: the official generator has affine instance norms and bias-free convs (the defaults);
    ganimation_replicate has plain instance norms and convs with biases (for importing its checkpoints).
    conditioning: how the labels reach the network.
      "tile": the paper's: the labels tiled over the image as num_aus extra input channels.
      "adain": the image alone goes in; a label embedding (num_aus -> adain_dim, two fully connected layers)
      drives adaptive instance norms (AdaIN, models/layers.py) in place of every instance norm of the residual
      and up-sampling blocks, the part that decodes the edit (the down-sampling encoder keeps its norms
      and sees the source image only). Only the embedding's first layer depends on num_aus, so a trained
      generator can be moved to another label set (models/transfer.py).
    compute_dtype: "bfloat16" for mixed precision (float32 weights, bf16 convolutions, float32 outputs).
    color_residual (beyond the paper, --g-color-residual): the color mask is clip(real + tanh(...), -1, 1), a change
    of the input rather than a whole new image, so that where the attention opens and nothing should change the
    mask has an easy target (0) instead of repainting the input. No new weights.
    Parameters at the defaults and 128 x 128: 8,471,296 (tile), 8,841,088 (adain, adain_dim 64).
    The model carries `conditioning` and `label_size` attributes (recorded by models/export.py).
    """
    if image_size % 4:
        raise ValueError(f"generator image_size must be a multiple of 4, got {image_size}")
    if conditioning not in CONDITIONINGS:
        raise ValueError(f"conditioning must be one of {', '.join(CONDITIONINGS)}, got {conditioning!r}")
    n = name
    real = tl.layers.Input([None, image_size, image_size, 3], name=f"{n}_real")
    y = tl.layers.Input([None, num_aus], name=f"{n}_y")
    if conditioning == "tile":
        x, embedding = TileAUs(name=f"{n}_tile")([real, y]), None  # (B, H, W, 3 + num_aus)
    else:
        x, embedding = real, _label_embedding(y, adain_dim, n)  # (B, H, W, 3), (B, adain_dim)

    def norm(h, layer_name, act, decoder=True):
        """The instance norm after a conv; an AdaIN driven by the labels in the adain generator's decoder."""
        if decoder and embedding is not None:
            return AdaIN(act=act, name=layer_name)([h, embedding])
        return InstanceNorm(norm_affine, act=act, name=layer_name)(h)

    dt = compute_dtype
    x = Conv(conv_dim, 7, 1, 3, bias=conv_bias, compute_dtype=dt, name=f"{n}_stem")(x)
    x = norm(x, f"{n}_stem_in", tf.nn.relu, decoder=False)
    dim = conv_dim
    for i in (1, 2):  # down-sampling: H -> H/4, 64 -> 256 channels
        x = Conv(dim * 2, 4, 2, 1, bias=conv_bias, compute_dtype=dt, name=f"{n}_down{i}")(x)
        x = norm(x, f"{n}_down{i}_in", tf.nn.relu, decoder=False)
        dim *= 2
    for i in range(n_res):
        x = _residual_block(x, dim, norm, conv_bias, dt, name=f"{n}_res{i}")
    for i in (1, 2):  # up-sampling: back to H, 256 -> 64 channels
        x = ConvTranspose(dim // 2, 4, 2, 1, bias=conv_bias, compute_dtype=dt, name=f"{n}_up{i}")(x)
        x = norm(x, f"{n}_up{i}_in", tf.nn.relu)
        dim //= 2

    heads = dict(bias=False, compute_dtype=dt, out_dtype=tf.float32)
    color = Conv(3, 7, 1, 3, act=tf.nn.tanh, name=f"{n}_color", **heads)(x)  # (B, H, W, 3)
    if color_residual:  # beyond the paper: the color mask is the input plus a change, clipped to [-1, 1]
        color = tl.layers.Elementwise(_add_clipped, name=f"{n}_color_residual")([real, color])
    attention = Conv(1, 7, 1, 3, act=tf.nn.sigmoid, name=f"{n}_attention", **heads)(x)  # (B, H, W, 1)
    G = tl.models.Model(inputs=[real, y], outputs=[color, attention], name=n)
    G.conditioning, G.label_size = conditioning, num_aus
    return G


def get_discriminator(image_size=128, conv_dim=64, n_layers=6, num_aus=NUM_AUS, compute_dtype="float32",
                      name="discriminator", projection=False):
    """The GANimation critic: image -> (realness map, AU estimate).

    Six Conv4x4-s2 + LeakyReLU(0.01) layers (conv_dim doubling each time), then two bias-free heads on the
    last feature map: a 3 x 3 critic head -> (B, H/2^n, W/2^n, 1), and an AU head whose kernel covers the
    whole map -> (B, num_aus), linear. image_size must be a multiple of 2 ** n_layers.
    compute_dtype: "bfloat16" for mixed precision (float32 weights and outputs).
    projection (beyond the paper, --d-projection): a third head like the AU head, h(x) (B, num_aus), that the
    training step projects on the AU labels (realness + <h(x), y>, training/steps.py `realness`).
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
    outputs = [realness, aus]
    if projection:
        h = Conv(num_aus, k, 1, 0, as_matmul=True, name=f"{n}_projection", **heads)(x)
        outputs.append(tl.layers.Reshape([-1, num_aus], name=f"{n}_projection_flat")(h))  # (B, num_aus)
    return tl.models.Model(inputs=real, outputs=outputs, name=n)


def build_networks(net, name_suffix="", num_aus=NUM_AUS):
    """(G, D) for a NetworkConfig (its precision fp32 or bf16: "auto" is resolved before building, by
    training.config.resolve_precision). Suffix the TensorLayer names when several copies live in one process.
    num_aus: the label size of both networks (the 17 AUs of the data; another for transfer learning)."""
    G = build_generator(net, "G" + name_suffix, num_aus)
    D = get_discriminator(net.image_size, net.d_conv_dim, net.d_layers, num_aus, compute_dtype=net.compute_dtype(),
                          name="D" + name_suffix, projection=net.d_projection)
    return G, D


def build_au_teacher(net, name="T", num_aus=NUM_AUS):
    """--au-teacher's AU regressor: a critic of D's architecture whose AU head alone is trained and read."""
    return get_discriminator(net.image_size, net.d_conv_dim, net.d_layers, num_aus, compute_dtype=net.compute_dtype(),
                             name=name)


def build_generator(net, name, num_aus=NUM_AUS):
    """The generator of a NetworkConfig (also the --g-ema average's copy)."""
    return get_generator(net.image_size, net.g_conv_dim, net.n_res, num_aus, norm_affine=net.g_norm_affine,
                         conv_bias=net.g_conv_bias, conditioning=net.conditioning, adain_dim=net.adain_dim,
                         compute_dtype=net.compute_dtype(), name=name, color_residual=net.g_color_residual)


def count_parameters(model):
    """Number of scalars in the model's trainable weights."""
    return int(sum(int(tf.size(w)) for w in model.trainable_weights))
