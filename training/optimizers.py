"""Adam as PyTorch computes it (the paper's optimizer), on Keras' Adam.

Both keep the same moments, m = b1 m + (1 - b1) g and v = b2 v + (1 - b2) g^2, and differ in where epsilon goes:

    PyTorch:  w -= lr * m_hat / (sqrt(v_hat) + eps),  m_hat = m / (1 - b1^t), v_hat = v / (1 - b2^t), eps 1e-8
    Keras:    w -= lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps),                            eps 1e-7

Keras' form is PyTorch's with an epsilon of eps / sqrt(1 - b2^t): at b2 = 0.999 that is 1e-7 / 0.032 = 3.2e-6 at
step 1 (316 times PyTorch's 1e-8), 1e-6 at step 10, and 1e-7 (10 times) for good. Small early gradients (the
critic's, at the start) get damped updates under Keras' form. `--adam torch` (the default) uses PyTorch's;
`--adam keras` keeps Keras' own. The variables (moments, iteration count) are Keras Adam's in both, so
checkpoints move between the two.
"""
import tensorflow as tf

from training.config import ADAM_VARIANTS
TORCH_EPSILON = 1e-8  # torch.optim.Adam's default


class TorchAdam(tf.keras.optimizers.Adam):
    """Keras Adam with PyTorch's update: epsilon added to the bias-corrected sqrt(v_hat)."""

    def __init__(self, learning_rate=1e-3, beta_1=0.9, beta_2=0.999, epsilon=TORCH_EPSILON, **kwargs):
        super().__init__(learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, **kwargs)

    def update_step(self, gradient, variable, learning_rate):
        """One fused kernel per variable (TensorFlow's ApplyAdam), with its epsilon rescaled so that the update
        is PyTorch's: ApplyAdam computes w -= lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + e), which is
        lr * m_hat / (sqrt(v_hat) + eps) for e = eps * sqrt(1 - b2^t). One pass over the weights instead of the
        separate element-wise ops of Keras' update (measured faster: docs/speed.md)."""
        dtype = variable.dtype
        t = tf.cast(self.iterations + 1, dtype)  # 1 at the first update
        beta1_power = tf.pow(tf.cast(self.beta_1, dtype), t)
        beta2_power = tf.pow(tf.cast(self.beta_2, dtype), t)
        m = self._momentums[self._get_variable_index(variable)]
        v = self._velocities[self._get_variable_index(variable)]
        tf.raw_ops.ResourceApplyAdam(
            var=_handle(variable), m=_handle(m), v=_handle(v), beta1_power=beta1_power, beta2_power=beta2_power,
            lr=tf.cast(learning_rate, dtype), beta1=tf.cast(self.beta_1, dtype), beta2=tf.cast(self.beta_2, dtype),
            epsilon=tf.cast(self.epsilon, dtype) * tf.sqrt(1.0 - beta2_power), grad=tf.cast(gradient, dtype))


def _handle(variable):
    """The resource handle of a tf.Variable, or of the tf.Variable inside a Keras variable (Adam's moments)."""
    return (variable.value if isinstance(variable, tf.keras.Variable) else variable).handle


def make_optimizer(lr, beta1, beta2, variant="torch"):
    """Adam for one network: PyTorch's update ("torch", the paper's optimizer) or Keras' own ("keras")."""
    if variant == "torch":
        return TorchAdam(learning_rate=lr, beta_1=beta1, beta_2=beta2)
    if variant == "keras":
        return tf.keras.optimizers.Adam(learning_rate=lr, beta_1=beta1, beta_2=beta2)
    raise ValueError(f"adam must be one of {', '.join(ADAM_VARIANTS)}, got {variant!r}")
