"""GANimation's loss terms (Pumarola et al., ECCV 2018, Sec. 4), one pure function per term.

Each returns an unweighted scalar; the training step applies the lambdas in one visible weighted sum.
Shapes: realness maps (B, h, w, 1); AU vectors (B, 17) on the networks' [0, 1] scale;
images (B, H, W, 3) in [-1, 1]; attention masks (B, H, W, 1) in [0, 1].
"""
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


def attention_magnitude(attention):
    """Attention loss, magnitude part (Eq. 4): mean(A). The caller sums it over A_fake and A_rec."""
    return tf.reduce_mean(attention)


def attention_smoothness(attention):
    """Attention loss, total-variation part (Eq. 4), as the official code: a sum (not a mean) over the batch
    of |A[i, j+1] - A[i, j]| + |A[i+1, j] - A[i, j]|. attention: (B, H, W, 1)."""
    horizontal = tf.reduce_sum(tf.abs(attention[:, :, 1:, :] - attention[:, :, :-1, :]))
    vertical = tf.reduce_sum(tf.abs(attention[:, 1:, :, :] - attention[:, :-1, :, :]))
    return horizontal + vertical
