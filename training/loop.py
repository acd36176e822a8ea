"""A training run, from configuration to exported SavedModel.

RUN_DIR/
  config.json        the resolved TrainConfig (read back by --resume)
  log.txt            what was printed, with times
  metrics.jsonl      one JSON line of scalars every --log-every steps
  tb/                TensorBoard events: every loss term, the learning rates, images/s, sample grids
                     (a resume drops what a killed run logged past its last checkpoint from both)
  samples/           step_XXXXXXX.png: input | color | attention | output | reconstruction, one row per face
  checkpoints/       tf.train.CheckpointManager: G, D, both Adam states, step, RNG state
  export/            the SavedModel (models/export.py) written at the end; with --tflite, edit_*.tflite
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

from data.constants import NUM_AUS
from data.errors import DataError
from data.pipeline import make_dataset, steps_per_epoch
from data.source import subset
from models.export import export_saved_model
from models.networks import count_parameters, get_discriminator, get_generator
from models.ops import to_uint8_pixels
from models.tflite import write_tflite
from training.progress import Progress
from training.schedule import learning_rate, warmup_weight
from training.config import PRECISIONS, load_source, resolve_precision  # noqa: F401 (load_source: API)
from training.distribute import is_chief, worker_info
from training.steps import GANimationSteps, generate
from utils.files import atomic_write_text, write_png

log = logging.getLogger("ganimation")
SAMPLE_FACES = 5  # rows of the sample grid


def build_networks(config, name_suffix="", num_aus=NUM_AUS):
    """(G, D) for a TrainConfig. Suffix the TensorLayer names when several copies live in one process.
    num_aus: the label size of both networks (the 17 AUs of the data; another for transfer learning)."""
    dtype = PRECISIONS[resolve_precision(config).precision]
    G = build_generator(config, "G" + name_suffix, num_aus)
    D = get_discriminator(config.image_size, config.d_conv_dim, config.d_layers, num_aus, compute_dtype=dtype,
                          name="D" + name_suffix)
    return G, D


def build_generator(config, name, num_aus=NUM_AUS):
    """A generator for a TrainConfig (also the --g-ema average's copy)."""
    return get_generator(config.image_size, config.g_conv_dim, config.n_res, num_aus, norm_affine=config.g_norm_affine,
                         conv_bias=config.g_conv_bias, conditioning=config.conditioning, adain_dim=config.adain_dim,
                         compute_dtype=PRECISIONS[resolve_precision(config).precision], name=name)


def new_run_dir(config):
    name = config.run_name or datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    path, k = os.path.join(config.runs_dir, name), 1
    while os.path.exists(path):
        k += 1
        path = os.path.join(config.runs_dir, f"{name}-{k}")
    os.makedirs(path)
    return path


def _setup_logging(folder, console=True):
    log.setLevel(logging.INFO)
    log.handlers.clear()
    to_file = logging.FileHandler(os.path.join(folder, "log.txt"))
    to_file.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    log.addHandler(to_file)
    if console:
        to_console = logging.StreamHandler(sys.stderr)
        to_console.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(to_console)
    log.propagate = False


class Run:
    """Everything about one training run: networks, steps, data, checkpoints, logs."""

    def __init__(self, config, run_dir, source=None, name_suffix="", strategy=None):
        self.config, self.run_dir, self.source = config, run_dir, source
        self.strategy = strategy or tf.distribute.get_strategy()
        self.chief = is_chief(self.strategy)
        multiworker = isinstance(self.strategy, tf.distribute.MultiWorkerMirroredStrategy)
        self.worker_index, self.num_workers = worker_info() if multiworker else (0, 1)
        # Non-chief workers of a multi-worker run keep their own checkpoints and log under workers/.
        self.work_dir = run_dir if self.chief else os.path.join(run_dir, "workers", f"worker-{self.worker_index}")
        rng = tf.random.Generator.from_seed(config.seed + 7919 * self.worker_index)  # outside the scope: see steps
        with self.strategy.scope():
            self.G, self.D = build_networks(config, name_suffix)
            G_ema = build_generator(config, "G_ema" + name_suffix) if config.g_ema else None
            self.steps = GANimationSteps(self.G, self.D, config, self.strategy, rng=rng, G_ema=G_ema)
        self.step = tf.Variable(0, dtype=tf.int64, name="step")  # critic steps done
        self.checkpoint = tf.train.Checkpoint(step=self.step, **self.steps.checkpoint_objects())
        self.manager = tf.train.CheckpointManager(self.checkpoint, os.path.join(self.work_dir, "checkpoints"),
                                                  max_to_keep=config.keep_checkpoints)

    def restore(self):
        """Load the newest checkpoint of the run (the chief's, for every worker). Returns its path or None."""
        path = tf.train.latest_checkpoint(os.path.join(self.run_dir, "checkpoints"))
        if not path:
            return None
        saved = {name.split("/")[0] for name, _ in tf.train.list_variables(path)}
        if self.steps.G_ema is not None and "G_ema" not in saved:  # saved with --g-ema off
            objects = {k: v for k, v in self.steps.checkpoint_objects().items() if k not in ("G_ema", "ema_updates")}
            tf.train.Checkpoint(step=self.step, **objects).restore(path).assert_existing_objects_matched()
            log.info("the checkpoint has no moving average of G (--g-ema was off): it starts at G's weights")
            self.steps.copy_to_ema()
        else:
            self.checkpoint.restore(path).assert_existing_objects_matched()
        return path

    def save(self):
        """Every worker saves (a multi-worker checkpoint is a collective act); only the chief's is the run's."""
        path = self.manager.save(checkpoint_number=int(self.step))
        log.info(f"checkpoint {path}")
        return path

    def export(self):
        out = os.path.join(self.run_dir, "export")
        c = self.config
        meta = dict(image_size=c.image_size, g_conv_dim=c.g_conv_dim, d_conv_dim=c.d_conv_dim, n_res=c.n_res,
                    d_layers=c.d_layers, g_norm_affine=c.g_norm_affine, g_conv_bias=c.g_conv_bias,
                    precision=resolve_precision(c).precision, step=int(self.step),
                    run_dir=os.path.abspath(self.run_dir))
        if c.conditioning == "adain":  # the export adds conditioning and label_size from the generator itself
            meta["adain_dim"] = c.adain_dim
        if c.g_ema:
            meta["generator"] = f"moving average of the weights, decay {c.g_ema:g} (--g-ema)"
        export_saved_model(self.steps.G_out, self.D, out, meta)
        log.info(f"exported SavedModel to {out}")
        if c.tflite:  # into the folder just swapped in, each file atomically (models/tflite.py)
            paths = write_tflite(out)
            log.info("wrote " + ", ".join(f"{os.path.basename(p)} ({os.path.getsize(p) / 1e6:.1f} MB)" for p in paths))
        return out

    # --- training ---

    def train(self):
        c, source = self.config, self.source
        spe = steps_per_epoch(source, c.batch)
        total = spe * c.epochs
        stop_at = min(total, c.max_steps) if c.max_steps else total  # --max-steps: the schedule stays --epochs'
        start = int(self.step)
        log.info(f"data: {source.name or c.data} ({len(source)} faces, {spe} steps per epoch); "
                 f"G {count_parameters(self.G):,} and D {count_parameters(self.D):,} parameters; "
                 f"device: {'GPU' if tf.config.list_physical_devices('GPU') else 'CPU'}; precision "
                 f"{resolve_precision(c).precision}" + (f" ({c.precision_note})" if c.precision_note else ""))
        if start:
            log.info(f"resuming at step {start} (epoch {start // spe + 1}, batch {start % spe})")
        if start >= stop_at:
            log.info("training already finished" if start >= total else f"already at --max-steps {c.max_steps}")
            return
        tb = os.path.join(self.run_dir, "tb")
        resumed = self.chief and os.path.isdir(tb) and any("tfevents" in f for f in os.listdir(tb))
        writer = tf.summary.create_file_writer(tb) if self.chief else tf.summary.create_noop_writer()
        if self.chief:  # a killed run logged past its last checkpoint: those steps are trained again
            drop_metrics_after(os.path.join(self.run_dir, "metrics.jsonl"), start)
        if resumed:
            purge_tensorboard_after(writer, start)
        local_batch = c.batch // self.num_workers
        sample_batch = self._sample_batch()
        progress = Progress(stop_at, start, enabled=self.chief)
        stopper = _GracefulStop()
        last_save = time.time()
        logged, pending = {}, {}  # the last logged means (for the progress line); tensors since the last log
        out_of_time = False
        with writer.as_default(), stopper:
            for epoch in range(start // spe, c.epochs):
                lr_g = learning_rate(c.lr_g, epoch + 1, c.epochs, c.decay_epochs)
                lr_d = learning_rate(c.lr_d, epoch + 1, c.epochs, c.decay_epochs)
                self.steps.set_learning_rates(lr_g, lr_d)
                done = int(self.step) % spe
                data = make_dataset(source, local_batch, c.image_size, epoch=epoch, skip_batches=done, seed=c.seed,
                                    flip=c.flip, num_workers=self.num_workers, worker_index=self.worker_index)
                data = data.take(min(spe, stop_at - epoch * spe) - done)  # every worker runs the same steps
                for real, y_src in data:
                    for k, v in self._train_batch(real, y_src).items():  # device tensors: no copy to the host
                        pending.setdefault(k, []).append(v)
                    self.step.assign_add(1)
                    step = int(self.step)
                    out_of_time = c.max_minutes and progress.elapsed() > 60 * c.max_minutes
                    last = step == stop_at or out_of_time
                    if self.chief and (step % c.log_every == 0 or last):  # means since the last log
                        logged = {k: float(tf.reduce_mean(tf.stack(v))) for k, v in pending.items()}
                        speed = progress.images_per_second(c.batch, step)
                        self._log_scalars(step, epoch + 1, logged, lr_g, lr_d, speed)
                        pending.clear()
                    progress.update(step, epoch + 1, c.epochs, c.batch, logged)
                    if self.chief and (step % c.sample_every == 0 or last):
                        self._write_samples(step, *sample_batch)
                    if self.chief and c.eval_every and not c.data and (step % c.eval_every == 0 or last):
                        progress.clear()
                        self._evaluate(step)
                    end_of_epoch = step % spe == 0
                    if (step % c.checkpoint_every == 0 or end_of_epoch or stopper.requested or last
                            or time.time() - last_save > 60 * c.checkpoint_minutes):
                        progress.clear()
                        self.save()
                        last_save = time.time()
                    if stopper.requested:
                        progress.clear()
                        log.info(f"stopped by signal at step {step}; resume with: python train.py --resume {self.run_dir}")
                        raise KeyboardInterrupt
                    if last:
                        break
                if out_of_time or int(self.step) >= stop_at:
                    break
        progress.clear()
        writer.flush()
        step = int(self.step)
        if out_of_time:
            log.info(f"time budget of {c.max_minutes:g} min reached at step {step} of {total} "
                     f"(epoch {step // spe + 1}); continue with: python train.py --resume {self.run_dir}")
        elif stop_at < total:
            log.info(f"stopped at --max-steps {c.max_steps} of {total} steps in {progress.elapsed() / 60:.1f} min; "
                     f"continue with: python train.py --resume {self.run_dir} --max-steps 0")
        else:
            log.info(f"finished {c.epochs} epochs ({total} steps) in {progress.elapsed() / 60:.1f} min")

    def _train_batch(self, real, y_src):
        """One critic step, and a generator step after every `critic_steps` of them (or, in the first
        --au-head-start steps, one step of the critic's AU regression alone). Returns the steps' scalars
        (tensors)."""
        c, steps = self.config, self.steps
        step = int(self.step)
        extras = steps.sample_extras(real)
        if step < c.au_head_start:
            real_, y_src_, extras_ = steps.distribute(real, y_src, extras)
            return steps.au_step(real_, y_src_, extras_)
        since = step - c.au_head_start  # the warm-ups start after the AU head's head start
        if c.att_warmup_steps:
            steps.set_attention_weight(warmup_weight(since, c.lambda_att, c.lambda_att_start, c.att_warmup_steps))
        if c.cond_warmup_steps:
            steps.set_au_weight(warmup_weight(since, c.lambda_cond, c.lambda_cond_start, c.cond_warmup_steps))
        y_tgt = steps.sample_targets(y_src)
        alpha = steps.sample_alpha(int(real.shape[0]))
        batch = steps.distribute(real, y_src, y_tgt, alpha, extras)
        critic_step = steps.critic_step_r1 if steps.r1_due(since) else steps.critic_step
        metrics = critic_step(*batch)
        if (since + 1) % c.critic_steps == 0:
            metrics = dict(metrics, **steps.generator_step(*batch))
        return metrics

    def _log_scalars(self, step, epoch, metrics, lr_g, lr_d, images_per_second):
        scalars = dict(metrics, **{"lr/G": lr_g, "lr/D": lr_d, "speed/images_per_s": images_per_second,
                                   "weights/lambda_att": float(self.steps.lambda_att.numpy()),
                                   "weights/lambda_cond": float(self.steps.lambda_cond.numpy())})
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

    def _evaluate(self, step):
        """Ground-truth scores on a small fixed held-out set (evaluation/groundtruth.py), to TensorBoard and
        metrics.jsonl."""
        from evaluation.groundtruth import evaluate, summary_scalars
        from models.export import InMemoryModel
        def scores(G):
            return summary_scalars(evaluate(InMemoryModel(G, self.D, self.config.image_size),
                                            n_identities=self.config.eval_identities,
                                            n_multi=3)[0])

        scalars = scores(self.steps.G_out)
        if self.steps.G_ema is not None:  # the average is what the run exports; the raw G's scores beside it
            raw = scores(self.G)
            scalars.update({"eval_raw/" + k[5:]: raw[k] for k in ("eval/single_gain_mean", "eval/single_gain_min",
                                                                  "eval/noop_psnr", "eval/attention_mean")})
        self.G.train(), self.D.train()
        for k, v in scalars.items():
            tf.summary.scalar(k, v, step=step)
        with open(os.path.join(self.run_dir, "metrics.jsonl"), "a") as f:
            f.write(json.dumps(dict(step=step, **scalars)) + "\n")
        log.info(f"step {step}: " + ", ".join(f"{k.replace('eval/', '')} {v:.3g}" for k, v in scalars.items()))

    def _write_samples(self, step, real, y_src, y_tgt):
        grid = sample_grid(self.steps.G_out, real, y_src, y_tgt)
        tf.summary.image("samples/input|color|attention|output|reconstruction", grid[None], step=step)
        write_png(os.path.join(self.run_dir, "samples", f"step_{step:07d}.png"), grid)


def drop_metrics_after(path, step):
    """Rewrite metrics.jsonl (atomically) without its lines past `step`, and without a line cut short by a kill;
    a resumed run logs those steps again."""
    if not os.path.exists(path):
        return
    with open(path) as f:
        lines = f.readlines()
    kept = []
    for line in lines:
        try:
            if json.loads(line).get("step", 0) <= step and line.endswith("\n"):
                kept.append(line)
        except (ValueError, AttributeError):
            pass
    if len(kept) < len(lines):
        atomic_write_text(path, "".join(kept))


def purge_tensorboard_after(writer, step):
    """Make TensorBoard drop what an earlier, killed process of this run logged past `step`: TensorBoard purges
    every event with a step >= N that it read before a SessionLog.START event at step N (its event accumulators,
    `_CheckForRestartAndMaybePurge`). TF2's writer has no purge_step argument, so the event is written raw
    (summary_ops_v2.import_event, TF2's writer op for a serialized Event). It is written twice: TensorBoard's
    Python loader takes the first START it sees in a run for the run's beginning, not a restart, and TF2 writes
    none of its own (a second START at the same step purges nothing more)."""
    from tensorflow.python.ops import summary_ops_v2
    event = tf.compat.v1.Event(wall_time=time.time(), step=step + 1,
                               session_log=tf.compat.v1.SessionLog(status=tf.compat.v1.SessionLog.START))
    with writer.as_default():
        for _ in range(2):
            summary_ops_v2.import_event(tf.constant(event.SerializeToString()))


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


def start(config, resume_dir=None, export_only=False, strategy=None, source=None):
    """Train (and export) as train.py does. Returns the run directory. `source`: the data, if already loaded
    (train.py loads it before TensorFlow starts, so bad data is reported at once).

    Under a multi-worker strategy every worker runs this with the same --run-name (or --resume): the chief
    creates and owns the run directory, the others keep their checkpoints and log in RUN_DIR/workers/.
    """
    strategy = strategy or tf.distribute.get_strategy()
    chief = is_chief(strategy)
    if config.batch % strategy.num_replicas_in_sync:
        raise DataError(None, f"--batch {config.batch} must be a multiple of the {strategy.num_replicas_in_sync} "
                              "replicas")
    if source is None and not export_only:
        source = load_source(config)  # bad data fails here, before anything is written
    if resume_dir:
        run_dir = resume_dir
    elif isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        if not config.run_name:
            raise DataError(None, "--strategy multiworker needs --run-name (the same on every worker)")
        run_dir = os.path.join(config.runs_dir, config.run_name)
        os.makedirs(run_dir, exist_ok=True)
    else:
        run_dir = new_run_dir(config)
    tf.keras.utils.set_random_seed(config.seed)
    run = Run(config, run_dir, source, strategy=strategy)
    os.makedirs(run.work_dir, exist_ok=True)
    _setup_logging(run.work_dir, console=chief)
    if chief:
        atomic_write_text(os.path.join(run_dir, "config.json"), config.to_json())
    restored = run.restore()
    if export_only:
        if not restored:
            raise DataError(run_dir, "has no checkpoint to export")
        log.info(f"restored {restored}")
        run.export()
        return run_dir
    log.info(f"run directory: {run_dir}" + ("" if chief else f" (worker {run.worker_index})"))
    run.train()
    if config.export and chief:
        run.export()
    return run_dir
