"""Architecture, layer semantics and the shape-sensitive helpers (tiling, composition, pixel mapping)."""
import numpy as np
import pytest
import tensorflow as tf

from data.scales import to_model_aus, to_model_pixels, to_openface_aus, to_uint8_pixels
from models.layers import AdaIN, Conv, ConvTranspose, InstanceNorm
from models.networks import G_LABEL_LAYER, count_parameters, get_discriminator, get_generator
from models.ops import compose, tile_aus


@pytest.mark.slow  # 22 s under load
def test_parameter_counts_match_the_reference_architecture(name):
    G = get_generator(128, name=name("G"))
    D = get_discriminator(128, name=name("D"))
    assert count_parameters(G) == 8_471_296
    assert count_parameters(D) == 44_860_352
    # AdaIN: a 3-channel stem (-53,312), no affine IN in the 12 residual and 2 up-sampling norms (-6,528), the
    # embedding 17 -> 64 -> 64 (+5,312) and one 64 -> 2C projection per AdaIN (+424,320).
    assert count_parameters(get_generator(128, conditioning="adain", name=name("A"))) == 8_841_088


@pytest.mark.slow  # 8 s under load
@pytest.mark.parametrize("conditioning", ["tile", "adain"])
def test_only_the_label_layer_depends_on_the_label_size(name, conditioning):
    """Built for 17 and for 5 labels: the adain generator differs only in its first embedding layer."""
    shapes = [{w.name.split("_", 2)[-1]: tuple(w.shape) for w in get_generator(
        32, conv_dim=8, n_res=1, num_aus=k, conditioning=conditioning, name=name("G")).all_weights} for k in (17, 5)]
    differ = sorted(k for k in shapes[0] if shapes[0][k] != shapes[1][k])
    assert shapes[0].keys() == shapes[1].keys()
    assert differ == ([f"{G_LABEL_LAYER}/weights:0"] if conditioning == "adain" else ["stem/filters:0"])


def test_a_projection_critic_moves_to_another_label_size(name):
    """--d-projection's head depends on the label size too: transfer copies every other weight of D."""
    from models.transfer import copy_weights
    from models.networks import D_LABEL_LAYERS
    D17, D5 = (get_discriminator(32, conv_dim=8, n_layers=5, num_aus=k, projection=True, name=name(f"D{k}"))
               for k in (17, 5))
    left = copy_weights(D17, D5, D_LABEL_LAYERS)
    assert sorted(left) == ["aus/filters", "projection/filters"]
    with pytest.raises(ValueError, match="not the same architecture"):
        copy_weights(D17, D5, "aus")  # the projection head's shape differs


@pytest.mark.slow  # 10 s under load
@pytest.mark.parametrize("conditioning", ["tile", "adain"])
@pytest.mark.parametrize("batch", [1, 3])
def test_output_shapes_and_ranges(name, batch, conditioning):
    G = get_generator(32, conv_dim=8, n_res=2, conditioning=conditioning, name=name("G"))
    D = get_discriminator(32, conv_dim=8, n_layers=5, name=name("D"))
    G.eval(), D.eval()
    real = tf.random.uniform([batch, 32, 32, 3], -1, 1)
    color, attention = G([real, tf.random.uniform([batch, 17])])
    assert color.shape == (batch, 32, 32, 3) and attention.shape == (batch, 32, 32, 1)
    assert -1 <= float(tf.reduce_min(color)) and float(tf.reduce_max(color)) <= 1
    assert 0 <= float(tf.reduce_min(attention)) and float(tf.reduce_max(attention)) <= 1
    realness, aus = D(real)
    assert realness.shape == (batch, 1, 1, 1)  # 32 px through 5 stride-2 convs
    assert aus.shape == (batch, 17)  # never squeezed, even at batch 1


def test_discriminator_maps_at_128(name):
    D = get_discriminator(128, conv_dim=4, name=name("D"))
    D.eval()
    realness, aus = D(tf.zeros([2, 128, 128, 3]))
    assert realness.shape == (2, 2, 2, 1) and aus.shape == (2, 17)


@pytest.mark.slow  # 8 s under load
def test_generator_has_no_conv_bias_and_affine_norms(name):
    G = get_generator(32, conv_dim=8, n_res=1, name=name("G"))
    names = [w.name for w in G.trainable_weights]
    assert not any("biases" in n for n in names)
    assert sum("gamma" in n for n in names) == sum("beta" in n for n in names) == 1 + 2 + 2 * 1 + 2
    R = get_generator(32, conv_dim=8, n_res=1, norm_affine=False, conv_bias=True, name=name("R"))
    names = [w.name for w in R.trainable_weights]
    assert not any("gamma" in n or "beta" in n for n in names)
    assert sum("biases" in n for n in names) == 1 + 2 + 2 * 1 + 2  # heads stay bias-free


def test_discriminator_trunk_has_biases_and_heads_do_not(name):
    D = get_discriminator(64, conv_dim=4, name=name("D"))
    biases = [w.name for w in D.trainable_weights if "biases" in w.name]
    assert len(biases) == 6 and not any("critic" in n or "_aus" in n for n in biases)


def test_tile_aus_puts_each_au_on_its_own_channel():
    images = tf.random.uniform([2, 5, 4, 3])
    aus = tf.constant(np.arange(34, dtype=np.float32).reshape(2, 17))
    out = tile_aus(images, aus).numpy()
    assert out.shape == (2, 5, 4, 20)
    np.testing.assert_array_equal(out[..., :3], images.numpy())
    for b in range(2):
        for k in range(17):
            assert np.all(out[b, :, :, 3 + k] == aus[b, k].numpy())


def test_compose_keeps_input_where_attention_is_one():
    image = tf.fill([1, 2, 2, 3], 0.5)
    color = tf.fill([1, 2, 2, 3], -1.0)
    attention = tf.constant([[[[1.0], [0.0]], [[0.5], [0.25]]]])
    out = compose(attention, image, color).numpy()[0, :, :, 0]
    np.testing.assert_allclose(out, [[0.5, -1.0], [-0.25, -0.625]])


def test_pixel_and_au_mappings():
    pixels = tf.constant([0, 1, 127, 128, 254, 255], tf.uint8)
    model = to_model_pixels(pixels)
    np.testing.assert_allclose(model.numpy()[[0, -1]], [-1.0, 1.0])
    np.testing.assert_array_equal(to_uint8_pixels(model).numpy(), pixels.numpy())
    assert to_uint8_pixels(tf.constant([-3.0, 3.0])).numpy().tolist() == [0, 255]  # clipped
    np.testing.assert_allclose(to_openface_aus(to_model_aus(tf.constant([0.0, 2.5, 5.0]))).numpy(), [0, 2.5, 5])
    np.testing.assert_allclose(to_model_aus(tf.constant([5.0])).numpy(), [1.0])


def _built(layer, x):
    """Build a TensorLayer layer for eager use outside a model; returns its forward function."""
    layer.build(x.shape)
    layer._built = True
    return layer.forward


def test_conv_padding_matches_same_padding_and_matmul_form():
    x = tf.random.normal([2, 8, 8, 5])
    conv = Conv(n_filter=6, filter_size=4, stride=2, pad=1, bias=False)
    forward = _built(conv, x)
    expected = tf.nn.conv2d(x, conv.W, 2, "SAME")  # 4x4, s2 on an even map: SAME pads 1 on each side
    np.testing.assert_allclose(forward(x).numpy(), expected.numpy(), atol=1e-5)
    conv.as_matmul = True
    np.testing.assert_allclose(forward(x).numpy(), expected.numpy(), atol=1e-4)


@pytest.mark.parametrize("k, s, p", [(4, 2, 1), (3, 2, 1), (4, 2, 0), (5, 1, 2)])
def test_conv_transpose_follows_pytorch_arithmetic(k, s, p):
    """out[n, i*s - p + a, j*s - p + b, o] += x[n, i, j, c] * W[a, b, o, c], cropped to (H-1)s - 2p + k.
    (4, 2, 1), the generator's, and (5, 1, 2) run as TF's SAME padding; the others crop a VALID output."""
    x = np.random.default_rng(0).normal(size=(2, 3, 3, 4)).astype(np.float32)
    layer = ConvTranspose(n_filter=5, filter_size=k, stride=s, pad=p, bias=False)
    forward = _built(layer, tf.constant(x))
    w = layer.W.numpy()
    full = np.zeros((2, (3 - 1) * s + k, (3 - 1) * s + k, 5), np.float32)
    for i in range(3):
        for j in range(3):
            full[:, i * s:i * s + k, j * s:j * s + k, :] += np.einsum("nc,abOc->nabO", x[:, i, j, :], w)
    expected = full[:, p:full.shape[1] - p, p:full.shape[2] - p, :]
    out = forward(tf.constant(x)).numpy()
    assert out.shape == (2, (3 - 1) * s - 2 * p + k, (3 - 1) * s - 2 * p + k, 5)
    np.testing.assert_allclose(out, expected, atol=1e-4)


def test_instance_norm_is_per_image_and_per_channel():
    rng = np.random.default_rng(0)
    x = tf.constant((rng.normal(size=(3, 6, 6, 4)) * [1.0, 5.0, 0.1, 2.0] + 3.0).astype(np.float32))
    norm = InstanceNorm(affine=True)
    forward = _built(norm, x)
    out = forward(x).numpy()
    np.testing.assert_allclose(out.mean(axis=(1, 2)), 0, atol=1e-4)
    var = x.numpy().var(axis=(1, 2))  # biased, per image and channel; epsilon 1e-5 inside the square root
    np.testing.assert_allclose(out.var(axis=(1, 2)), var / (var + 1e-5), rtol=1e-3)
    np.testing.assert_allclose(forward(x[:1]).numpy(), out[:1], atol=1e-5)  # independent of the batch
    norm.gamma.assign([2.0, 2.0, 2.0, 2.0])
    norm.beta.assign([1.0, 1.0, 1.0, 1.0])
    np.testing.assert_allclose(forward(x).numpy(), 2 * out + 1, atol=1e-4)
    plain = InstanceNorm(affine=False)
    _built(plain, x)
    assert plain.trainable_weights == []


def test_adain_is_instance_norm_modulated_by_the_embedding():
    """(1 + gamma) * IN(x) + beta with [gamma, beta] = e W + b; close to a plain IN at initialisation."""
    rng = np.random.default_rng(1)
    x = tf.constant(rng.normal(2.0, 3.0, (2, 5, 5, 3)).astype(np.float32))
    e = tf.constant(rng.uniform(0, 1, (2, 4)).astype(np.float32))
    tf.keras.utils.set_random_seed(0)  # the initial W: one fixed draw, so the bounds below hold every run
    layer = AdaIN()
    layer.build([x.shape, e.shape])
    layer._built = True
    plain = _built(InstanceNorm(affine=False), x)(x).numpy()
    assert layer.W.shape == (4, 6) and layer.b.shape == (6,)
    # W ~ N(0, 0.02), b = 0: |gamma|, |beta| are a few hundredths, so the output is the plain IN within a few
    # percent (over 20,000 simulated initialisations: mean |difference| <= 0.055, largest element <= 0.26; this
    # seed's draw: 0.020 and 0.086).
    difference = np.abs(layer.forward([x, e]).numpy() - plain)
    assert difference.mean() < 0.055 and difference.max() < 0.26
    layer.W.assign(rng.normal(size=(4, 6)).astype(np.float32))
    layer.b.assign(rng.normal(size=6).astype(np.float32))
    style = e.numpy() @ layer.W.numpy() + layer.b.numpy()  # (2, 6): gamma | beta per channel
    expected = (1 + style[:, None, None, :3]) * plain + style[:, None, None, 3:]
    np.testing.assert_allclose(layer.forward([x, e]).numpy(), expected, atol=1e-4)
    low = layer.forward([tf.cast(x, tf.bfloat16), e])  # bf16 in, bf16 out; statistics in float32
    assert low.dtype == tf.bfloat16
    np.testing.assert_allclose(tf.cast(low, tf.float32).numpy(), expected, rtol=0.02, atol=0.05)


def test_adain_generator_sees_the_labels_through_the_embedding_only(name):
    G = get_generator(32, conv_dim=8, n_res=1, conditioning="adain", adain_dim=16, name=name("G"))
    G.eval()
    weights = {w.name.split("_", 2)[-1]: w for w in G.all_weights}
    assert weights["stem/filters:0"].shape == (7, 7, 3, 8)  # the image alone goes in
    assert weights["embed1/weights:0"].shape == (17, 16) and weights["embed2/weights:0"].shape == (16, 16)
    adain = [k for k in weights if "style_weights" in k]
    assert sorted(adain) == sorted(f"{layer}/style_weights:0" for layer in
                                   ("res0_in1", "res0_in2", "up1_in", "up2_in"))
    real = tf.random.uniform([2, 32, 32, 3], -1, 1, seed=3)
    smile, blink = np.zeros((2, 17), np.float32), np.zeros((2, 17), np.float32)
    smile[:, 8], blink[:, 16] = 1.0, 1.0
    a, b = G([real, tf.constant(smile)]), G([real, tf.constant(blink)])
    assert np.abs(a[0].numpy() - b[0].numpy()).max() > 1e-4  # the labels change the output from the start
