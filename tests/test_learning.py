"""Training learns, not only runs: a tiny network on a very easy subset of the built-in faces (one identity,
one AU) must edit that AU better than copying its input, scored against the true renders (evaluation/)."""
import numpy as np

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
    config = tiny_config(g_conv_dim=16, d_conv_dim=16, batch=8, epochs=STEPS * 8 // FACES, lr_g=1e-3, lr_d=1e-3,
                         critic_steps=2, lambda_cond=1000.0, flip=False, decay_epochs=0, eval_every=0, log_every=100,
                         checkpoint_every=10_000)
    run = TrainingState(config, str(tmp_path), name_suffix=name(""))
    model = InMemoryModel(run.G, run.D, config.net.image_size)
    before = single_au_gain(model, IDENTITY, AU)
    train(run, _one_au_source(config.net.image_size))
    after = single_au_gain(model, IDENTITY, AU)
    assert before < 0.05  # an untrained generator does not edit (it blurs the whole image)
    assert after > GAIN, f"edit gain {after:.3f} after {STEPS} steps (before: {before:.3f})"


# Measured over three initialisations: 0.20-0.24 after 800 steps, rising steadily (about -1 to -4 untrained).
# The AU weight is raised from 160: the loss is a mean over 17 AUs of which one changes here, and at 160 the
# attention saturates to copying in about half of the runs.
STEPS, GAIN = 800, 0.1
