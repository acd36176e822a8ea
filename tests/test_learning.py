"""Training learns, not only runs: a tiny network on a very easy subset of the built-in faces (one identity,
one AU) must edit that AU better than copying its input, scored against the true renders (evaluation/)."""
import numpy as np
import tensorflow as tf

from conftest import tiny_config
from data.faceset import FaceSet
from data.synthetic import render_face
from evaluation.groundtruth import single_au_gain
from models.export import InMemoryModel
from training.loop import train
from training.state import TrainingState

IDENTITY, AU = 3, 15  # AU26 jaw drop: the mouth opens
FACES = 64


def _one_au_source(size):
    rng = np.random.default_rng(0)
    aus = np.zeros((FACES, 17), np.float32)
    aus[:, AU] = np.round(rng.uniform(0, 5, FACES), 2)
    images = np.stack([render_face(IDENTITY, y, size) for y in aus])
    return FaceSet(aus=aus, ids=[f"face{i}" for i in range(FACES)], images=images, name="one identity, AU26")


def test_a_few_hundred_steps_learn_to_edit_one_au(tmp_path, name):
    tf.keras.utils.set_random_seed(SEED)  # the initialisation (and every TF random op) fixed: a seeded claim
    config = tiny_config(seed=SEED, g_conv_dim=16, d_conv_dim=16, batch=8, epochs=STEPS * 8 // FACES, lr_g=1e-3, lr_d=1e-3,
                         critic_steps=2, lambda_cond=1000.0, flip=False, decay_epochs=0, eval_every=0, log_every=100,
                         checkpoint_every=10_000)
    run = TrainingState(config, str(tmp_path), name_suffix=name(""))
    model = InMemoryModel(run.G, run.D, config.net.image_size)
    before = single_au_gain(model, IDENTITY, AU)
    train(run, _one_au_source(config.net.image_size))
    after = single_au_gain(model, IDENTITY, AU)
    assert before < 0.05  # an untrained generator does not edit (it blurs the whole image)
    assert after > GAIN, f"edit gain {after:.3f} after {STEPS} steps (before: {before:.3f})"


# The AU weight is raised from the paper's 160: the loss is a mean over 17 AUs of which one changes here, and at
# 160 the attention saturates to copying in about half of the initialisations (docs/learning.md, "The test").
# Measured at 1000 (Zen 4, fp32, PyTorch's Adam): gains 0.285, 0.271 and 0.255 after 800 steps for seeds 0, 1
# and 2 (untrained: about -1 to -4). Seeded, the run is the same on every run of one machine.
SEED, STEPS, GAIN = 0, 800, 0.1
