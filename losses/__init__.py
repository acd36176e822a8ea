"""GANimation's loss terms (Pumarola et al., ECCV 2018, Sec. 4), one pure function per term.

Each returns an unweighted scalar; the training step applies the lambdas in one visible weighted sum.
Shapes: realness maps (B, h, w, 1); AU vectors (B, 17) on the networks' [0, 1] scale;
images (B, H, W, 3) in [-1, 1]; attention masks (B, H, W, 1) in [0, 1].
"""
import math

import tensorflow as tf

# Inside the square root of the gradient norm, so that a zero gradient gives no NaN.
GP_EPSILON = 1e-12


def critic_adversarial(real_realness, fake_realness):
    """WGAN critic loss (Eq. 2's first term, to minimise): mean(D_I(fake)) - mean(D_I(real))."""
    return tf.reduce_mean(fake_realness) - tf.reduce_mean(real_realness)


def generator_adversarial(fake_realness):
    """WGAN generator loss (Eq. 2, to minimise for G): -mean(D_I(fake))."""
    return -tf.reduce_mean(fake_realness)


def gradient_penalty(critic, real, fake, alpha):
    """WGAN-GP (Gulrajani et al. 2017; GANimation Eq. 2): mean_b (||grad_x D_I(x_hat_b)||_2 - 1)^2.

    critic: a function x -> realness (B, ...) (the critic head only, never the AU head).
    real, fake: (B, H, W, C). alpha: (B, 1, 1, 1), drawn from U(0, 1) per sample by the caller.
    x_hat = alpha * real + (1 - alpha) * fake. The norm is per sample, over H, W and C.
    The result stays differentiable with respect to the critic's weights (double backprop): call it inside
    the tape that differentiates the critic loss.
    """
    real, fake, alpha = (tf.convert_to_tensor(t) for t in (real, fake, alpha))
    x_hat = alpha * real + (1.0 - alpha) * fake
    with tf.GradientTape() as tape:
        tape.watch(x_hat)
        realness = critic(x_hat)
    grads = tape.gradient(realness, x_hat)  # d sum(realness) / d x_hat, (B, H, W, C)
    norms = tf.sqrt(tf.reduce_sum(tf.square(grads), axis=[1, 2, 3]) + GP_EPSILON)  # (B,)
    return tf.reduce_mean(tf.square(norms - 1.0))


def expression_loss(predicted_aus, target_aus):
    """AU regression (Eq. 3): per-element mean squared error between D_y's estimate and the labels.

    The official code divides this mean again by the batch size and weights it 4000; at its batch of 25
    that is a per-element weight of 160. This project uses lambda_cond = 160 on the plain per-element mean,
    so the weight does not change with the batch size.
    """
    return tf.reduce_mean(tf.square(predicted_aus - target_aus))


def cycle_loss(reconstruction, real):
    """Identity / cycle loss (Eq. 5): mean |G(G(real, y_tgt), y_src) - real| (per-element L1)."""
    return tf.reduce_mean(tf.abs(reconstruction - real))


def edit_sparsity(fake, real):
    """--lambda-edit-l1: mean |G(real, y_tgt) - real| (per-element L1 of the edit). Its gradient has the same
    size at every changed pixel, so a pixel moves only where the AU loss pulls it harder than the weight: the
    diffuse pull spread over the face is cut off, the strong local one kept (an L1 soft threshold)."""
    return tf.reduce_mean(tf.abs(fake - real))


def attention_magnitude(attention):
    """Attention loss, magnitude part (Eq. 4): mean(A). The caller sums it over A_fake and A_rec."""
    return tf.reduce_mean(attention)


def attention_smoothness(attention):
    """Attention loss, total-variation part (Eq. 4), as the official code: a sum (not a mean) over the batch
    of |A[i, j+1] - A[i, j]| + |A[i+1, j] - A[i, j]|. attention: (B, H, W, 1)."""
    horizontal = tf.reduce_sum(tf.abs(attention[:, :, 1:, :] - attention[:, :, :-1, :]))
    vertical = tf.reduce_sum(tf.abs(attention[:, 1:, :, :] - attention[:, :-1, :, :]))
    return horizontal + vertical


# --- Beyond the paper (options, off by default; training/config.py says which flag turns each on) ---

def critic_nonsaturating(real_logits, fake_logits):
    """Non-saturating logistic GAN loss for the critic (Goodfellow et al. 2014; StyleGAN2, StarGAN v2):
    mean(softplus(-D(real))) + mean(softplus(D(fake))), i.e. -log sigmoid(D(real)) - log(1 - sigmoid(D(fake))).
    Logits: realness maps (B, h, w, 1), every patch a logit."""
    return tf.reduce_mean(tf.nn.softplus(-real_logits)) + tf.reduce_mean(tf.nn.softplus(fake_logits))


def generator_nonsaturating(fake_logits):
    """Non-saturating logistic GAN loss for the generator: mean(softplus(-D(fake))) = -log sigmoid(D(fake))."""
    return tf.reduce_mean(tf.nn.softplus(-fake_logits))


def r1_penalty(critic, real):
    """R1 (Mescheder et al. 2018; StyleGAN2, StarGAN v2): mean_b ||grad_x sum D_I(x_b)||^2 at the real images.

    critic: x -> realness (B, ...); the gradient is of the sum over the realness map, per sample, squared norm
    over H, W and C (no square root). The caller weights it by gamma / 2. Differentiable with respect to the
    critic's weights: call it inside the critic loss's tape.
    """
    real = tf.convert_to_tensor(real)
    with tf.GradientTape() as tape:
        tape.watch(real)
        realness = critic(real)
    grads = tape.gradient(realness, real)  # (B, H, W, C)
    return tf.reduce_mean(tf.reduce_sum(tf.square(grads), axis=[1, 2, 3]))


def au_jacobian_penalty(au_head, real, probe):
    """A penalty on the input gradient of the AU head at real images: an unbiased estimate of
    mean_b ||J_b||_F^2, J_b = d D_y(x_b) / d x_b (17 x H W C), from one random projection per sample
    (Hoffman et al. 2019, "Robust learning with Jacobian regularization"): E_v ||J^T v||^2 = ||J||_F^2 for
    v ~ N(0, I). A smooth AU head cannot be moved by small high-frequency changes of the pixels, so the
    generator has to draw the expression to change its reading.

    au_head: x -> AUs (B, K). real: (B, H, W, C). probe: (B, K) standard normal, drawn by the caller.
    """
    real = tf.convert_to_tensor(real)
    with tf.GradientTape() as tape:
        tape.watch(real)
        projected = tf.reduce_sum(au_head(real) * probe, axis=1)  # (B,) v_b . D_y(x_b)
    grads = tape.gradient(projected, real)  # J_b^T v_b, (B, H, W, C)
    return tf.reduce_mean(tf.reduce_sum(tf.square(grads), axis=[1, 2, 3]))


def au_adversarial_images(au_head, real, target, start, eps, steps=1):
    """Real images moved, within an L2 ball of radius `eps` per image, to where the AU head's reading is furthest
    from their true AUs: projected gradient ascent on sum_b ||D_y(x_b + r_b) - y_b||^2 from a small random start,
    `steps` steps of size 2.5 eps / steps (Madry et al. 2018, L2 threat model). Training the AU head on them
    (adversarial training) makes it robust, so that the generator cannot move its reading with changes smaller
    than eps, and robust models have input gradients that look like the features (Santurkar et al. 2019).

    au_head: x -> AUs (B, K). real: (B, H, W, C); target: (B, K); start: (B, H, W, C), e.g. 1e-3 N(0, 1).
    Returns the perturbed images, no gradient through them.
    """
    real = tf.convert_to_tensor(real)
    r = tf.convert_to_tensor(start, real.dtype)
    size = 2.5 * eps / steps
    for _ in range(steps):
        with tf.GradientTape() as tape:
            tape.watch(r)
            error = tf.reduce_sum(tf.square(au_head(real + r) - tf.cast(target, tf.float32)))
        grad = tape.gradient(error, r)
        r = r + size * grad / (tf.norm(tf.reshape(grad, [tf.shape(grad)[0], -1]), axis=1)[:, None, None, None] + 1e-12)
        norm = tf.norm(tf.reshape(r, [tf.shape(r)[0], -1]), axis=1)[:, None, None, None]
        r = r * tf.minimum(1.0, eps / (norm + 1e-12))
    return tf.stop_gradient(real + r)


def color_smoothness(color, attention):
    """Total variation of the color mask where the output uses it: mean over pixels of
    (1 - A) * (|C[i, j+1] - C[i, j]| + |C[i+1, j] - C[i, j]|), summed over the 3 channels.

    The weight (1 - A) is held constant (no gradient into the attention), so the term smooths the colors that
    show without pushing the attention to copy. color: (B, H, W, 3); attention: (B, H, W, 1).
    """
    weight = tf.stop_gradient(1.0 - attention)
    dx = tf.reduce_sum(tf.abs(color[:, :, 1:, :] - color[:, :, :-1, :]), axis=3, keepdims=True)  # (B, H, W-1, 1)
    dy = tf.reduce_sum(tf.abs(color[:, 1:, :, :] - color[:, :-1, :, :]), axis=3, keepdims=True)  # (B, H-1, W, 1)
    return tf.reduce_mean(dx * weight[:, :, 1:, :]) + tf.reduce_mean(dy * weight[:, 1:, :, :])


def gaussian_blur(images, sigma):
    """Images (B, H, W, C) low-pass filtered by a Gaussian of std `sigma` pixels (separable, radius ceil(2 sigma),
    reflected borders): --au-blur's view of an image for the AU head, which colour noise finer than the blur
    cannot move."""
    radius = max(1, int(math.ceil(2.0 * sigma)))
    taps = tf.exp(-tf.square(tf.range(-radius, radius + 1, dtype=tf.float32)) / (2.0 * sigma * sigma))
    taps = tf.cast(taps / tf.reduce_sum(taps), images.dtype)
    channels = images.shape[-1]
    padded = tf.pad(images, [[0, 0], [radius, radius], [radius, radius], [0, 0]], mode="REFLECT")
    rows = tf.tile(tf.reshape(taps, [-1, 1, 1, 1]), [1, 1, channels, 1])
    cols = tf.tile(tf.reshape(taps, [1, -1, 1, 1]), [1, 1, channels, 1])
    blurred = tf.nn.depthwise_conv2d(padded, rows, [1, 1, 1, 1], "VALID")
    return tf.nn.depthwise_conv2d(blurred, cols, [1, 1, 1, 1], "VALID")

