"""TensorLayer layers that TensorLayer 2.2.5 lacks or gets wrong under TF 2.21 / Keras 3.

Convolutions take a compute dtype (bf16 for mixed precision: weights stay float32 and are cast for the
arithmetic; instance-norm statistics stay float32) and an optional output dtype for float32 heads.
All follow PyTorch's padding arithmetic (explicit `pad` pixels on each side), so that shapes and
weights line up with the reference architecture and with imported PyTorch checkpoints.
Kernels are stored HWIO (transposed convs: H, W, out, in), TensorFlow's layout.
"""
import tensorflow as tf
import tensorlayer as tl
from tensorlayer.layers import Layer

from models.ops import tile_aus

# The reference initialisation: weights N(0, 0.02), biases 0 (docs/method.md, "Initialisation").
WEIGHT_INIT = tl.initializers.random_normal(mean=0.0, stddev=0.02)
ZERO_INIT = tl.initializers.zeros()
ONE_INIT = tl.initializers.ones()


class Conv(Layer):
    """2-D convolution with PyTorch-style symmetric zero padding.

    as_matmul: compute the convolution as one (patches x weights) matrix product. For a layer whose
    output map is tiny and whose weight is huge (D's 1024 -> 2048 conv on a 4 x 4 map, 33.5 M weights)
    this avoids oneDNN re-laying out the weight on every call, which dominated the critic step
    (docs/speed.md). Same weights, same results.
    """

    def __init__(self, n_filter, filter_size, stride=1, pad=0, bias=True, act=None, as_matmul=False,
                 in_channels=None, compute_dtype=tf.float32, out_dtype=None, name=None):
        super().__init__(name, act=act)
        self.n_filter, self.filter_size, self.stride, self.pad = n_filter, filter_size, stride, pad
        self.use_bias, self.as_matmul, self.in_channels = bias, as_matmul, in_channels
        self.compute_dtype, self.out_dtype = tf.as_dtype(compute_dtype), out_dtype
        if in_channels is not None:
            self.build(None)
            self._built = True

    def __repr__(self):
        return (f"Conv({self.in_channels}->{self.n_filter}, k={self.filter_size}, s={self.stride}, "
                f"p={self.pad}, bias={self.use_bias}, name='{self.name}')")

    def build(self, inputs_shape):
        if self.in_channels is None:
            self.in_channels = int(inputs_shape[-1])
        k = self.filter_size
        self.W = self._get_weights("filters", shape=(k, k, self.in_channels, self.n_filter), init=WEIGHT_INIT)
        if self.use_bias:
            self.b = self._get_weights("biases", shape=(self.n_filter,), init=ZERO_INIT)

    def forward(self, inputs):
        p = self.pad
        x = tf.cast(inputs, self.compute_dtype)
        x = tf.pad(x, [[0, 0], [p, p], [p, p], [0, 0]]) if p else x
        w = tf.cast(self.W, self.compute_dtype)  # float32 weights, bf16 arithmetic under mixed precision
        if self.as_matmul:
            out = self._matmul_conv(x, w)
        else:
            out = tf.nn.conv2d(x, w, strides=self.stride, padding="VALID")
        if self.use_bias:
            out = tf.nn.bias_add(out, tf.cast(self.b, self.compute_dtype))
        return _finish(self, out)

    def _matmul_conv(self, x, w):
        k, s = self.filter_size, self.stride
        # (B, Ho, Wo, k*k*Cin), flattened in (row, col, channel) order = the HWIO kernel's order.
        patches = tf.image.extract_patches(x, sizes=[1, k, k, 1], strides=[1, s, s, 1], rates=[1, 1, 1, 1],
                                           padding="VALID")
        w = tf.reshape(w, [k * k * self.in_channels, self.n_filter])
        return tf.einsum("bhwp,po->bhwo", patches, w)


def _finish(layer, out):
    """Activation, then the layer's output dtype (float32 heads on a bf16 network)."""
    out = layer.act(out) if layer.act else out
    return tf.cast(out, layer.out_dtype) if layer.out_dtype is not None else out


class ConvTranspose(Layer):
    """2-D transposed convolution, PyTorch `ConvTranspose2d(k, stride, padding=pad)` semantics.

    Output size: (H - 1) * stride - 2 * pad + k. Kernel stored (k, k, out, in) as tf.nn.conv2d_transpose wants.
    """

    def __init__(self, n_filter, filter_size, stride=2, pad=1, bias=True, act=None, in_channels=None,
                 compute_dtype=tf.float32, out_dtype=None, name=None):
        super().__init__(name, act=act)
        self.n_filter, self.filter_size, self.stride, self.pad = n_filter, filter_size, stride, pad
        self.use_bias, self.in_channels = bias, in_channels
        self.compute_dtype, self.out_dtype = tf.as_dtype(compute_dtype), out_dtype
        if in_channels is not None:
            self.build(None)
            self._built = True

    def __repr__(self):
        return (f"ConvTranspose({self.in_channels}->{self.n_filter}, k={self.filter_size}, s={self.stride}, "
                f"p={self.pad}, bias={self.use_bias}, name='{self.name}')")

    def build(self, inputs_shape):
        if self.in_channels is None:
            self.in_channels = int(inputs_shape[-1])
        k = self.filter_size
        self.W = self._get_weights("filters", shape=(k, k, self.n_filter, self.in_channels), init=WEIGHT_INIT)
        if self.use_bias:
            self.b = self._get_weights("biases", shape=(self.n_filter,), init=ZERO_INIT)

    def forward(self, inputs):
        k, s, p = self.filter_size, self.stride, self.pad
        shape = tf.shape(inputs)
        x, w = tf.cast(inputs, self.compute_dtype), tf.cast(self.W, self.compute_dtype)
        if 2 * p == k - s:  # PyTorch's crop of p on each side is TF's SAME (k 4, s 2, p 1: H -> 2H), done in place
            out = tf.nn.conv2d_transpose(x, w, [shape[0], shape[1] * s, shape[2] * s, self.n_filter], strides=s,
                                         padding="SAME")
        else:
            full_h = (shape[1] - 1) * s + k  # the output before PyTorch's cropping of `pad` on each side
            full_w = (shape[2] - 1) * s + k
            out = tf.nn.conv2d_transpose(x, w, [shape[0], full_h, full_w, self.n_filter], strides=s, padding="VALID")
            if p:
                out = out[:, p:full_h - p, p:full_w - p, :]
        if self.use_bias:
            out = tf.nn.bias_add(out, tf.cast(self.b, self.compute_dtype))
        return _finish(self, out)


class InstanceNorm(Layer):
    """Instance normalisation: per image, per channel, over H and W (epsilon 1e-5, biased variance).

    affine=True adds a learnable gamma (init 1) and beta (init 0), as the official GANimation generator;
    affine=False has no parameters, as ganimation_replicate. TensorLayer's InstanceNorm2d fails for batch > 1
    under TF 2.21, hence this layer.
    """

    def __init__(self, affine=True, epsilon=1e-5, act=None, num_features=None, name=None):
        super().__init__(name, act=act)
        self.affine, self.epsilon, self.num_features = affine, epsilon, num_features
        if num_features is not None:
            self.build(None)
            self._built = True

    def __repr__(self):
        return f"InstanceNorm({self.num_features}, affine={self.affine}, name='{self.name}')"

    def build(self, inputs_shape):
        if self.num_features is None:
            self.num_features = int(inputs_shape[-1])
        if self.affine:
            self.gamma = self._get_weights("gamma", shape=(self.num_features,), init=ONE_INIT)
            self.beta = self._get_weights("beta", shape=(self.num_features,), init=ZERO_INIT)

    def forward(self, inputs):
        out = instance_normalize(inputs, self.epsilon)
        if self.affine:
            out = out * self.gamma + self.beta
        out = tf.cast(out, inputs.dtype)
        return self.act(out) if self.act else out


def instance_normalize(x, epsilon):
    """(x - mean) / sqrt(var + epsilon) per image and channel over H, W, in float32 (also for bf16 inputs)."""
    x = tf.cast(x, tf.float32)
    mean, variance = tf.nn.moments(x, axes=[1, 2], keepdims=True)
    return (x - mean) * tf.math.rsqrt(variance + epsilon)


class AdaIN(Layer):
    """Adaptive instance normalisation driven by a label embedding (Huang & Belongie, ICCV 2017).

    inputs [x (B, H, W, C), embedding (B, d)] -> (1 + gamma) * IN(x) + beta, (B, H, W, C), where
    [gamma, beta] = embedding @ W + b (B, 2C) is a linear projection that this layer owns. IN has no affine
    parameters of its own. W starts N(0, 0.02) and b at 0, so the scale starts near 1 and the shift near 0:
    an untrained AdaIN is close to a plain instance norm. Statistics and modulation in float32 (bf16 inputs
    are cast back at the end), like InstanceNorm.
    """

    def __init__(self, epsilon=1e-5, act=None, name=None):
        super().__init__(name, act=act)
        self.epsilon, self.num_features = epsilon, None

    def __repr__(self):
        return f"AdaIN({self.num_features}, name='{self.name}')"

    def build(self, inputs_shape):
        x_shape, embedding_shape = inputs_shape
        self.num_features = int(x_shape[-1])
        self.W = self._get_weights("style_weights", shape=(int(embedding_shape[-1]), 2 * self.num_features),
                                   init=WEIGHT_INIT)
        self.b = self._get_weights("style_biases", shape=(2 * self.num_features,), init=ZERO_INIT)

    def forward(self, inputs):
        x, embedding = inputs
        style = tf.matmul(tf.cast(embedding, tf.float32), self.W) + self.b  # (B, 2C)
        gamma, beta = tf.split(style[:, tf.newaxis, tf.newaxis, :], 2, axis=-1)  # (B, 1, 1, C) each
        out = tf.cast((1.0 + gamma) * instance_normalize(x, self.epsilon) + beta, x.dtype)
        return self.act(out) if self.act else out


class TileAUs(Layer):
    """The conditioning of the generator: (image, aus) -> image with the AUs tiled as extra channels."""

    def build(self, inputs_shape):
        pass

    def forward(self, inputs):
        images, aus = inputs
        return tile_aus(images, aus)
