"""A training run, from configuration to exported SavedModel.

RUN_DIR/
  config.json        the resolved TrainConfig (read back by --resume)
  log.txt            what was printed, with times
  metrics.jsonl      one JSON line of scalars every --log-every steps
  tb/                TensorBoard events: every loss term, the learning rates, images/s, sample grids
  samples/           step_XXXXXXX.png: input | color | attention | output | reconstruction, one row per face
  checkpoints/       tf.train.CheckpointManager: G, D, both Adam states, step, RNG state
  export/            the SavedModel (models/export.py) written at the end
"""
import datetime
import json
import logging
import os
import signal
import sys
import time

import numpy as np
import tensorflow as tf

from data.errors import DataError
from data.pipeline import make_dataset, steps_per_epoch
from data.source import subset
from models.export import export_saved_model
from models.networks import count_parameters, get_discriminator, get_generator
from models.ops import to_uint8_pixels
from training.progress import Progress
from training.schedule import learning_rate
from training.steps import GANimationSteps, generate
from utils.files import atomic_write_text, write_png

log = logging.getLogger("ganimation")
SAMPLE_FACES = 5  # rows of the sample grid


def build_networks(config, name_suffix=""):
    """(G, D) for a TrainConfig. Suffix the TensorLayer names when several copies live in one process."""
    G = get_generator(config.image_size, config.g_conv_dim, config.n_res, name="G" + name_suffix)
    D = get_discriminator(config.image_size, config.d_conv_dim, config.d_layers, name="D" + name_suffix)
    return G, D


def load_source(config):
    """The training data named by the config: a dataset path, or the built-in synthetic faces."""
    if config.data:
        from data.readers import load_dataset
        source = load_dataset(config.data, split="train", allow_pickle=config.allow_pickle)
    else:
        from data.synthetic import make_synthetic_source
        source = make_synthetic_source(config.synthetic_identities, config.synthetic_per_identity,
                                       size=config.image_size, seed=config.seed)
    if len(source) < config.batch:
        raise DataError(config.data or "synthetic data", f"{len(source)} usable samples, fewer than one batch "
                                                         f"of {config.batch} (lower --batch)")
    return source


def new_run_dir(config):
    name = config.run_name or datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    path, k = os.path.join(config.runs_dir, name), 1
    while os.path.exists(path):
        k += 1
        path = os.path.join(config.runs_dir, f"{name}-{k}")
    os.makedirs(path)
    return path


def _setup_logging(run_dir):
    log.setLevel(logging.INFO)
    log.handlers.clear()
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(logging.Formatter("%(message)s"))
    to_file = logging.FileHandler(os.path.join(run_dir, "log.txt"))
    to_file.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    log.addHandler(console)
    log.addHandler(to_file)
    log.propagate = False


class Run:
    """Everything about one training run: networks, steps, data, checkpoints, logs."""

    def __init__(self, config, run_dir, source=None, name_suffix=""):
        self.config, self.run_dir = config, run_dir
        self.source = source
        self.G, self.D = build_networks(config, name_suffix)
        self.steps = GANimationSteps(self.G, self.D, config)
        self.step = tf.Variable(0, dtype=tf.int64, name="step")  # critic steps done
        self.checkpoint = tf.train.Checkpoint(step=self.step, **self.steps.checkpoint_objects())
        self.manager = tf.train.CheckpointManager(self.checkpoint, os.path.join(run_dir, "checkpoints"),
                                                  max_to_keep=config.keep_checkpoints)

    def restore(self):
        """Load the newest checkpoint if there is one. Returns its path or None."""
        path = self.manager.latest_checkpoint
        if path:
            self.checkpoint.restore(path).assert_existing_objects_matched()
        return path

    def save(self):
        path = self.manager.save(checkpoint_number=int(self.step))
        log.info(f"checkpoint {path}")
        return path

    def export(self):
        out = os.path.join(self.run_dir, "export")
        c = self.config
        meta = dict(image_size=c.image_size, g_conv_dim=c.g_conv_dim, d_conv_dim=c.d_conv_dim, n_res=c.n_res,
                    d_layers=c.d_layers, conditioning="tile", step=int(self.step), run_dir=os.path.abspath(self.run_dir))
        export_saved_model(self.G, self.D, out, meta)
        log.info(f"exported SavedModel to {out}")
        return out

    # --- training ---

    def train(self):
        c, source = self.config, self.source
        spe = steps_per_epoch(source, c.batch)
        total = spe * c.epochs
        start = int(self.step)
        log.info(f"data: {source.name or c.data} ({len(source)} faces, {spe} steps per epoch); "
                 f"G {count_parameters(self.G):,} and D {count_parameters(self.D):,} parameters; "
                 f"device: {'GPU' if tf.config.list_physical_devices('GPU') else 'CPU'}")
        if start:
            log.info(f"resuming at step {start} (epoch {start // spe + 1}, batch {start % spe})")
        if start >= total:
            log.info("training already finished")
            return
        writer = tf.summary.create_file_writer(os.path.join(self.run_dir, "tb"))
        sample_batch = self._sample_batch()
        progress = Progress(total, start)
        stopper = _GracefulStop()
        last_save = time.time()
        latest, pending = {}, {}
        with writer.as_default(), stopper:
            for epoch in range(start // spe, c.epochs):
                lr_g = learning_rate(c.lr_g, epoch + 1, c.epochs, c.decay_epochs)
                lr_d = learning_rate(c.lr_d, epoch + 1, c.epochs, c.decay_epochs)
                self.steps.set_learning_rates(lr_g, lr_d)
                data = make_dataset(source, c.batch, c.image_size, epoch=epoch, skip_batches=int(self.step) % spe,
                                    seed=c.seed, flip=c.flip)
                for real, y_src in data:
                    metrics = self._train_batch(real, y_src)
                    latest.update(metrics)  # the generator's scalars change only every critic_steps
                    for k, v in metrics.items():
                        pending.setdefault(k, []).append(v)
                    self.step.assign_add(1)
                    step = int(self.step)
                    progress.update(step, epoch + 1, c.epochs, c.batch, latest)
                    if step % c.log_every == 0 or step == total:  # means over the steps since the last log
                        means = {k: float(np.mean(v)) for k, v in pending.items()}
                        self._log_scalars(step, epoch + 1, means, lr_g, lr_d, progress.images_per_second(c.batch))
                        pending.clear()
                    if step % c.sample_every == 0 or step == total:
                        self._write_samples(step, *sample_batch)
                    end_of_epoch = step % spe == 0
                    if (step % c.checkpoint_every == 0 or end_of_epoch or stopper.requested
                            or time.time() - last_save > 60 * c.checkpoint_minutes):
                        progress.clear()
                        self.save()
                        last_save = time.time()
                    if stopper.requested:
                        progress.clear()
                        log.info(f"stopped by signal at step {step}; resume with: python train.py --resume {self.run_dir}")
                        raise KeyboardInterrupt
        progress.clear()
        writer.flush()
        log.info(f"finished {c.epochs} epochs ({total} steps) in {progress.elapsed() / 60:.1f} min")

    def _train_batch(self, real, y_src):
        """One critic step, and a generator step after every `critic_steps` of them. Returns the scalars
        of this batch's steps."""
        y_tgt = self.steps.sample_targets(y_src)
        metrics = self.steps.critic_step(real, y_src, y_tgt)
        if (int(self.step) + 1) % self.config.critic_steps == 0:
            metrics = dict(metrics, **self.steps.generator_step(real, y_src, y_tgt))
        return {k: float(v) for k, v in metrics.items()}

    def _log_scalars(self, step, epoch, metrics, lr_g, lr_d, images_per_second):
        scalars = dict(metrics, **{"lr/G": lr_g, "lr/D": lr_d, "speed/images_per_s": images_per_second})
        for k, v in scalars.items():
            tf.summary.scalar(k, v, step=step)
        with open(os.path.join(self.run_dir, "metrics.jsonl"), "a") as f:
            f.write(json.dumps(dict(step=step, epoch=epoch, **scalars)) + "\n")

    def _sample_batch(self):
        """A fixed batch for the sample grids: faces spread over the data, each sent to the next one's AUs."""
        n = min(SAMPLE_FACES, len(self.source))
        faces = subset(self.source, np.linspace(0, len(self.source) - 1, 2 * n).round().astype(int))
        singles = make_dataset(faces, 1, self.config.image_size, shuffle=False, flip=False)
        real, y_src = (tf.concat(t, axis=0) for t in zip(*singles.take(n)))  # files that fail to decode are skipped
        y_tgt = tf.roll(y_src, shift=1, axis=0)
        return real, y_src, y_tgt

    def _write_samples(self, step, real, y_src, y_tgt):
        grid = sample_grid(self.G, real, y_src, y_tgt)
        tf.summary.image("samples/input|color|attention|output|reconstruction", grid[None], step=step)
        write_png(os.path.join(self.run_dir, "samples", f"step_{step:07d}.png"), grid)


def sample_grid(G, real, y_src, y_tgt):
    """uint8 (rows * S, 5 * S, 3): per face, input | color | attention | output | reconstruction."""
    fake, color, attention = generate(G, real, y_tgt)
    rec, _, _ = generate(G, fake, y_src)
    attention = tf.tile(attention * 2.0 - 1.0, [1, 1, 1, 3])  # [0, 1] -> gray pixels
    row = tf.concat([real, color, attention, fake, rec], axis=2)  # (N, S, 5S, 3)
    return to_uint8_pixels(tf.concat(tf.unstack(row), axis=0)).numpy()


class _GracefulStop:
    """SIGINT / SIGTERM ask the loop to save a checkpoint and stop after the current step."""

    def __init__(self):
        self.requested = False

    def __enter__(self):
        self._old = {s: signal.signal(s, self._handler) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def __exit__(self, *exc):
        for s, h in self._old.items():
            signal.signal(s, h)
        return False

    def _handler(self, signum, frame):
        if self.requested:  # a second Ctrl-C stops at once
            raise KeyboardInterrupt
        self.requested = True


def start(config, resume_dir=None, export_only=False):
    """Train (and export) as train.py does. Returns the run directory."""
    if resume_dir:
        run_dir = resume_dir
        source = None if export_only else load_source(config)
    else:
        source = load_source(config)  # bad data fails here, before anything is written
        run_dir = new_run_dir(config)
    _setup_logging(run_dir)
    atomic_write_text(os.path.join(run_dir, "config.json"), config.to_json())
    tf.keras.utils.set_random_seed(config.seed)
    run = Run(config, run_dir, source)
    restored = run.restore()
    if export_only:
        if not restored:
                raise DataError(run_dir, "has no checkpoint to export")
        log.info(f"restored {restored}")
        run.export()
        return run_dir
    log.info(f"run directory: {run_dir}")
    run.train()
    if config.export:
        run.export()
    return run_dir
