"""Each loss term against a closed form or numbers worked out by hand."""
import numpy as np
import pytest
import tensorflow as tf

import losses


def test_gradient_penalty_of_a_linear_critic_is_nine():
    """D(x) = 2 * sum(x) over 4 values: the gradient is 2 everywhere, its norm sqrt(4 * 4) = 4, so (4 - 1)^2 = 9."""
    real = tf.random.normal([3, 1, 2, 2])
    fake = tf.random.normal([3, 1, 2, 2])
    alpha = tf.random.uniform([3, 1, 1, 1])
    gp = losses.gradient_penalty(lambda x: 2.0 * tf.reduce_sum(x, axis=[1, 2, 3]), real, fake, alpha)
    assert float(gp) == pytest.approx(9.0, rel=1e-6)


def test_gradient_penalty_norm_is_per_sample_over_h_w_c():
    """D(x) = sum(x^2) / 2 has gradient x_hat, so the penalty is mean_b (||x_hat_b|| - 1)^2."""
    rng = np.random.default_rng(1)
    real = rng.normal(size=(4, 3, 3, 2)).astype(np.float32)
    fake = rng.normal(size=(4, 3, 3, 2)).astype(np.float32)
    alpha = rng.uniform(size=(4, 1, 1, 1)).astype(np.float32)
    gp = losses.gradient_penalty(lambda x: tf.reduce_sum(x * x, axis=[1, 2, 3]) / 2, real, fake, alpha)
    x_hat = alpha * real + (1 - alpha) * fake
    norms = np.sqrt((x_hat ** 2).sum(axis=(1, 2, 3)))
    assert float(gp) == pytest.approx(np.mean((norms - 1) ** 2), rel=1e-5)


def test_gradient_penalty_reaches_the_critic_weights():
    """Double backprop: for D(x) = w . x, GP = (||w|| - 1)^2 and dGP/dw = 2 (||w|| - 1) w / ||w||."""
    w = tf.Variable([[3.0], [0.0], [4.0], [0.0]])  # ||w|| = 5
    critic = lambda x: tf.matmul(tf.reshape(x, [-1, 4]), w)  # noqa: E731
    real, fake = tf.random.normal([2, 1, 2, 2]), tf.random.normal([2, 1, 2, 2])
    with tf.GradientTape() as tape:
        gp = losses.gradient_penalty(critic, real, fake, tf.random.uniform([2, 1, 1, 1]))
    grad = tape.gradient(gp, w)
    assert float(gp) == pytest.approx(16.0, rel=1e-6)
    np.testing.assert_allclose(grad.numpy(), 2 * 4 * w.numpy() / 5, rtol=1e-5)


def test_gradient_penalty_is_finite_for_a_flat_critic():
    """A zero gradient gives (0 - 1)^2 = 1 and a finite gradient: the epsilon sits inside the sqrt."""
    w = tf.Variable(0.0)
    real = tf.zeros([2, 2, 2, 1])
    with tf.GradientTape() as tape:
        gp = losses.gradient_penalty(lambda x: w * tf.reduce_sum(x, axis=[1, 2, 3]), real, real,
                                     tf.ones([2, 1, 1, 1]))
    assert float(gp) == pytest.approx(1.0, abs=1e-5)
    assert np.isfinite(tape.gradient(gp, w).numpy())


def test_adversarial_terms():
    real = tf.constant([[[[1.0]], [[3.0]]]])  # mean 2
    fake = tf.constant([[[[-1.0]], [[0.0]]]])  # mean -0.5
    assert float(losses.critic_adversarial(real, fake)) == pytest.approx(-2.5)
    assert float(losses.generator_adversarial(fake)) == pytest.approx(0.5)


def test_expression_loss_is_the_per_element_mean():
    predicted = tf.constant([[0.5, 0.0], [1.0, 1.0]])
    target = tf.constant([[0.0, 0.0], [1.0, 0.0]])
    assert float(losses.expression_loss(predicted, target)) == pytest.approx((0.25 + 0 + 0 + 1) / 4)


def test_cycle_loss_is_mean_absolute_error():
    rec = tf.constant([[[[0.5, -0.5, 1.0]]]])
    real = tf.constant([[[[0.0, 0.0, 0.0]]]])
    assert float(losses.cycle_loss(rec, real)) == pytest.approx(2.0 / 3.0)


def test_attention_magnitude_is_the_mean():
    attention = tf.constant([[[[0.0], [1.0]], [[0.5], [0.5]]]])
    assert float(losses.attention_magnitude(attention)) == pytest.approx(0.5)


def test_attention_smoothness_sums_horizontal_and_vertical_differences():
    # One 2 x 3 mask: horizontal |0.2-0|+|1-0.2| + |0.5-0.5|+|0-0.5| = 1.5; vertical |0.5-0|+|0.5-0.2|+|0-1| = 1.8.
    mask = tf.constant([[0.0, 0.2, 1.0], [0.5, 0.5, 0.0]])[None, :, :, None]
    assert float(losses.attention_smoothness(mask)) == pytest.approx(3.3)
    # A sum over the batch, not a mean.
    assert float(losses.attention_smoothness(tf.concat([mask, mask], 0))) == pytest.approx(6.6)


# --- the options beyond the paper ---

def test_nonsaturating_losses_are_softplus_means():
    """softplus(0) = log 2; softplus(-2) = log(1 + e^-2); softplus(2) = 2 + log(1 + e^-2)."""
    real = tf.constant([[[[0.0]], [[2.0]]]])  # logits 0 and 2
    fake = tf.constant([[[[0.0]], [[-2.0]]]])
    sp = lambda x: np.log1p(np.exp(x))  # noqa: E731
    expected_d = (sp(0) + sp(-2)) / 2 + (sp(0) + sp(-2)) / 2
    assert float(losses.critic_nonsaturating(real, fake)) == pytest.approx(expected_d, rel=1e-6)
    assert float(losses.generator_nonsaturating(fake)) == pytest.approx((sp(0) + sp(2)) / 2, rel=1e-6)


def test_r1_of_a_linear_critic_is_the_squared_weight_norm():
    """D(x) = w . x has gradient w at every image: R1 = ||w||^2 = 25, and dR1/dw = 2 w (double backprop)."""
    w = tf.Variable([[3.0], [0.0], [4.0], [0.0]])
    critic = lambda x: tf.matmul(tf.reshape(x, [-1, 4]), w)  # noqa: E731
    real = tf.random.normal([3, 1, 2, 2])
    with tf.GradientTape() as tape:
        r1 = losses.r1_penalty(critic, real)
    assert float(r1) == pytest.approx(25.0, rel=1e-6)
    np.testing.assert_allclose(tape.gradient(r1, w).numpy(), 2 * w.numpy(), rtol=1e-5)


def test_r1_is_a_mean_over_the_batch_of_per_sample_sums():
    """D(x) = sum(x^2) / 2 has gradient x: R1 = mean_b ||x_b||^2."""
    x = np.arange(12, dtype=np.float32).reshape(3, 2, 2, 1) / 10
    r1 = losses.r1_penalty(lambda t: tf.reduce_sum(t * t, axis=[1, 2, 3]) / 2, x)
    assert float(r1) == pytest.approx(np.mean((x ** 2).sum(axis=(1, 2, 3))), rel=1e-5)


def test_au_jacobian_penalty_of_a_linear_head():
    """D_y(x) = W x (W: 2 AUs x 4 pixels) has Jacobian W: with probe v the estimate is ||W^T v||^2, and its mean
    over standard normal probes is ||W||_F^2."""
    W = np.array([[1.0, 2.0, 0.0, 0.0], [0.0, 0.0, 3.0, -1.0]], np.float32)  # ||W||_F^2 = 15
    head = lambda x: tf.matmul(tf.reshape(x, [-1, 4]), W.T)  # noqa: E731
    real = np.zeros((2, 1, 2, 2), np.float32)
    probe = np.array([[1.0, 0.0], [1.0, 1.0]], np.float32)  # W^T v: (1, 2, 0, 0) -> 5; (1, 2, 3, -1) -> 15
    assert float(losses.au_jacobian_penalty(head, real, probe)) == pytest.approx(10.0, rel=1e-6)
    probes = np.random.default_rng(0).normal(size=(20_000, 2)).astype(np.float32)
    estimate = losses.au_jacobian_penalty(head, np.zeros((20_000, 1, 2, 2), np.float32), probes)
    assert float(estimate) == pytest.approx(15.0, rel=0.03)


def test_color_smoothness_weights_differences_by_where_the_color_shows():
    """A 1 x 3 row (one channel of 3 nonzero): horizontal differences |0.5 - 0| and |0.5 - 0.5|, each weighted
    by 1 - A at the right pixel of its pair, mean over the pairs."""
    color = tf.constant([[[[0.0, 0.0, 0.0], [0.5, 0.0, 0.0], [0.5, 0.0, 0.0]]]])  # (1, 1, 3, 3)
    copy_everywhere = tf.ones([1, 1, 3, 1])
    use_color = tf.constant([[[[0.0], [0.0], [1.0]]]])  # 1 - A = 1, 1, 0
    # Two rows, so that the vertical term is defined: the same row twice has no vertical differences.
    two = lambda t: tf.concat([t, t], axis=1)  # noqa: E731
    assert float(losses.color_smoothness(two(color), two(copy_everywhere))) == pytest.approx(0.0)
    assert float(losses.color_smoothness(two(color), two(use_color))) == pytest.approx((0.5 * 1 + 0.0 * 0) / 2)
    with tf.GradientTape() as tape:
        a = tf.Variable(two(use_color))
        value = losses.color_smoothness(two(color), a)
    assert tape.gradient(value, a) is None  # no push on the attention
