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
