"""Schedules: the learning rates (constant, then a linear decay over the last epochs) and the optional
warm-ups of the attention and AU loss weights."""


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


def warmup_weight(step, weight, start_weight, warmup_steps):
    """A loss weight at critic step `step` (0-based) under a linear warm-up.

    Without a warm-up (warmup_steps 0) it is `weight` throughout, as in the paper. With one, it moves
    linearly from `start_weight` at step 0 to `weight` at `warmup_steps`, then stays there. Used for the
    attention weight (--att-warmup-steps) and the AU weight (--cond-warmup-steps).
    """
    if warmup_steps <= 0 or step >= warmup_steps:
        return weight
    return start_weight + (weight - start_weight) * step / warmup_steps
