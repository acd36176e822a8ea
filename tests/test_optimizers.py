"""Adam with PyTorch's update (the default) against its closed form, and against torch.optim.Adam when torch is
installed; Keras' own update is the other variant and differs where the issue says it does (early steps)."""
import numpy as np
import pytest
import tensorflow as tf

from training.optimizers import TorchAdam, make_optimizer

GRADIENTS = [np.array([1e-3, -2.0, 0.0, 5e-6], np.float32), np.array([2e-3, 1.0, 1e-8, -5e-6], np.float32),
             np.array([-1e-3, 0.5, 0.0, 1e-5], np.float32)]
LR, B1, B2 = 1e-4, 0.5, 0.999


def _closed_form(gradients, lr=LR, b1=B1, b2=B2, eps=1e-8):
    """PyTorch's Adam (torch.optim.Adam, amsgrad off, no weight decay), written out in float64."""
    w, m, v, out = np.zeros(4), np.zeros(4), np.zeros(4), []
    for t, g in enumerate(gradients, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat, v_hat = m / (1 - b1 ** t), v / (1 - b2 ** t)
        w = w - lr * m_hat / (np.sqrt(v_hat) + eps)
        out.append(w.copy())
    return out


def _run(optimizer, gradients):
    w = tf.Variable(np.zeros(4, np.float32))
    optimizer.build([w])
    out = []
    for g in gradients:
        optimizer.apply_gradients([(tf.constant(g), w)])
        out.append(w.numpy().copy())
    return out


def test_torch_adam_follows_the_closed_form():
    got = _run(TorchAdam(learning_rate=LR, beta_1=B1, beta_2=B2), GRADIENTS)
    for step, (a, b) in enumerate(zip(got, _closed_form(GRADIENTS)), start=1):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-12, err_msg=f"step {step}")
    # The first update of a coordinate with a nonzero gradient is lr * sign(g) (m_hat / sqrt(v_hat) = +-1),
    # up to epsilon: for g = 5e-6, PyTorch's epsilon 1e-8 costs 0.2% of the step.
    np.testing.assert_allclose(got[0][[0, 1]], [-LR, LR], rtol=1e-4)
    assert got[0][3] == pytest.approx(-LR * 5e-6 / (5e-6 + 1e-8), rel=1e-4)


def test_keras_adam_damps_small_early_gradients_and_torch_adam_does_not():
    """Keras' epsilon sits on the uncorrected sqrt(v): at step 1 it is worth 1e-7 / sqrt(1 - 0.999) = 3.2e-6
    against the corrected gradient scale, so a gradient of 5e-6 moves its weight by only 61% of lr."""
    keras_first = _run(make_optimizer(LR, B1, B2, "keras"), GRADIENTS[:1])[0]
    torch_first = _run(make_optimizer(LR, B1, B2, "torch"), GRADIENTS[:1])[0]
    g = GRADIENTS[0]
    expected_keras = -LR * g / (np.abs(g) + 1e-7 / np.sqrt(1 - B2))  # m_hat / (|g| + effective epsilon)
    np.testing.assert_allclose(keras_first, expected_keras, rtol=1e-3)
    assert -keras_first[3] < 0.65 * LR < -torch_first[3]
    assert keras_first[1] == pytest.approx(torch_first[1], rel=1e-5)  # a large gradient: the same step


def test_make_optimizer_refuses_an_unknown_variant():
    with pytest.raises(ValueError, match="adam must be one of torch, keras"):
        make_optimizer(LR, B1, B2, "sgd")


@pytest.mark.torch
def test_torch_adam_matches_torch_optim_adam():
    torch = pytest.importorskip("torch")
    w = torch.zeros(4, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.Adam([w], lr=LR, betas=(B1, B2))
    expected = []
    for g in GRADIENTS:
        w.grad = torch.tensor(g, dtype=torch.float64)
        optimizer.step()
        expected.append(w.detach().numpy().copy())
    got = _run(TorchAdam(learning_rate=LR, beta_1=B1, beta_2=B2), GRADIENTS)
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-12)
