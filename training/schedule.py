"""Schedules: the learning rates (constant, then a linear decay over the last epochs) and the optional
attention warm-up."""


def learning_rate(base_lr, epoch, epochs, decay_epochs):
    """Learning rate during `epoch` (1-based) of `epochs`.

    1. Constant `base_lr` through epoch `epochs - decay_epochs`.
    2. Then base_lr * (epochs - epoch + 1) / decay_epochs: one step down per epoch, reaching
       base_lr / decay_epochs in the last epoch. With 30 epochs and 10 decay epochs this is the
       official run: 1e-4 through epoch 21, 9e-5 at 22, 8e-5 at 23, ... 1e-5 at 30.
    decay_epochs larger than epochs decays over all of them.
    """
    decay_epochs = min(decay_epochs, epochs)
    if decay_epochs <= 0 or epoch <= epochs - decay_epochs:
        return base_lr
    return base_lr * (epochs - epoch + 1) / decay_epochs


def attention_weight(step, lambda_att, lambda_att_start, warmup_steps):
    """Weight of the attention magnitude loss at critic step `step` (0-based).

    Without a warm-up (warmup_steps 0) it is `lambda_att` throughout, as in the paper. With one, it falls
    linearly from `lambda_att_start` at step 0 to `lambda_att` at `warmup_steps`, then stays there.
    """
    if warmup_steps <= 0 or step >= warmup_steps:
        return lambda_att
    return lambda_att_start + (lambda_att - lambda_att_start) * step / warmup_steps
