"""The training loop, and a training run from configuration to exported SavedModel (what train.py runs).

    state = TrainingState(config, run_dir)     # training/state.py: networks, steps, step counter, checkpoints
    train(state, faces)                         # until the end, --max-steps, --max-minutes or a signal

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

from data.pipeline import make_dataset, steps_per_epoch
from data.scales import to_uint8_pixels
from models.networks import count_parameters
from training.config import load_training_data
from training.distribute import is_chief
from training.progress import Progress
from training.schedule import learning_rate, warmup_weight
from training.state import TrainingState
from training.steps import generate
from utils.errors import UserError
from utils.files import atomic_write_text, write_png

log = logging.getLogger("ganimation")
SAMPLE_FACES = 5  # rows of the sample grid


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


def train(state, faces):
    """Train `state` on `faces` (a data.faceset.FaceSet or data.shards.ShardSet) from its step on, until the last
    step of --epochs, --max-steps, the --max-minutes budget or SIGINT / SIGTERM; the run's logs, samples,
    evaluations and checkpoints on the way. Returns why it stopped: "finished", "max_steps", "time" or "signal"."""
    c = state.config
    spe = steps_per_epoch(faces, c.batch)
    total = spe * c.epochs
    stop_at = min(total, c.max_steps) if c.max_steps else total  # --max-steps: the schedule stays --epochs'
    start = int(state.step)
    log.info(f"data: {faces.name or c.data} ({len(faces)} faces, {spe} steps per epoch); "
             f"G {count_parameters(state.G):,} and D {count_parameters(state.D):,} parameters; "
             f"device: {'GPU' if tf.config.list_physical_devices('GPU') else 'CPU'}; precision "
             f"{c.net.precision}" + (f" ({c.precision_note})" if c.precision_note else ""))
    if start:
        log.info(f"resuming at step {start} (epoch {start // spe + 1}, batch {start % spe})")
    if start >= stop_at:
        log.info("training already finished" if start >= total else f"already at --max-steps {c.max_steps}")
        return "finished" if start >= total else "max_steps"
    writer = _open_logs(state, start)
    sample_batch = _sample_batch(faces, c.net.image_size)
    progress = Progress(stop_at, start, enabled=state.chief, logger=log)  # log's console lines go above the bar
    last_save = time.time()
    logged, pending = {}, {}  # the last logged means (for the progress line); tensors since the last log
    done = None  # why training stops after this step, once it does
    with writer.as_default(), _GracefulStop() as stopper:
        for epoch, lr_g, lr_d, real, y_src in _batches(state, faces, spe, stop_at):
            for k, v in _train_batch(state, real, y_src).items():  # device tensors: no copy to the host
                pending.setdefault(k, []).append(v)
            state.step.assign_add(1)
            step = int(state.step)
            if c.max_minutes and progress.elapsed() > 60 * c.max_minutes:
                done = "time"
            elif step >= stop_at:
                done = "finished" if step >= total else "max_steps"
            elif stopper.requested:
                done = "signal"
            # Maintenance, all of it here. The end of training logs, samples and evaluates too; a signal only saves.
            last = done is not None and done != "signal"
            if state.chief and (step % c.log_every == 0 or last):  # means since the last log
                logged = {k: float(tf.reduce_mean(tf.stack(v))) for k, v in pending.items()}
                _log_scalars(state, step, epoch + 1, logged, lr_g, lr_d, progress.images_per_second(c.batch, step))
                pending.clear()
            progress.update(step, epoch + 1, c.epochs, c.batch, logged)
            generator_trained = step > c.au_head_start  # during --au-head-start, G is still its initialisation
            if state.chief and ((generator_trained and step % c.sample_every == 0) or last):
                _write_samples(state, step, *sample_batch)
            if (state.chief and c.eval_every and not c.data
                    and ((generator_trained and step % c.eval_every == 0) or last)):
                progress.clear()
                _evaluate(state, step)
            if (step % c.checkpoint_every == 0 or step % spe == 0 or done
                    or time.time() - last_save > 60 * c.checkpoint_minutes):
                progress.clear()
                state.save()
                last_save = time.time()
            if done:
                break
    done = done or ("max_steps" if stop_at < total else "finished")  # the data ran short: files left out
    progress.close()
    writer.flush()
    _log_stop(state, done, spe, total, progress.elapsed())
    return done


def _batches(state, faces, spe, stop_at):
    """(epoch, lr_g, lr_d, real, y_src) from the run's step on, up to step `stop_at` (every worker runs the same
    steps). Each epoch sets its learning rates and has its own order (a resume skips the batches done)."""
    c = state.config
    for epoch in range(int(state.step) // spe, c.epochs):
        lr_g = learning_rate(c.lr_g, epoch + 1, c.epochs, c.decay_epochs)
        lr_d = learning_rate(c.lr_d, epoch + 1, c.epochs, c.decay_epochs)
        state.steps.set_learning_rates(lr_g, lr_d)
        done = int(state.step) % spe
        data = make_dataset(faces, c.batch // state.num_workers, c.net.image_size, epoch=epoch, skip_batches=done,
                            seed=c.seed, flip=c.flip, num_workers=state.num_workers, worker_index=state.worker_index)
        for real, y_src in data.take(min(spe, stop_at - epoch * spe) - done):
            yield epoch, lr_g, lr_d, real, y_src


def _train_batch(state, real, y_src):
    """One critic step, and a generator step after every `critic_steps` of them (or, in the first
    --au-head-start steps, one step of the critic's AU regression alone). Returns the steps' scalars
    (tensors)."""
    c, steps = state.config, state.steps
    step = int(state.step)
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


def _open_logs(state, start):
    """The run's TensorBoard writer (a no-op one on other workers than the chief), after dropping what a killed
    run logged past step `start` from metrics.jsonl and TensorBoard: those steps are trained again."""
    if not state.chief:
        return tf.summary.create_noop_writer()
    tb = os.path.join(state.run_dir, "tb")
    resumed = os.path.isdir(tb) and any("tfevents" in f for f in os.listdir(tb))
    writer = tf.summary.create_file_writer(tb)
    drop_metrics_after(os.path.join(state.run_dir, "metrics.jsonl"), start)
    if resumed:
        purge_tensorboard_after(writer, start)
    return writer


def _log_stop(state, done, spe, total, seconds):
    c, step = state.config, int(state.step)
    resume = f"python train.py --resume {state.run_dir}"
    if done == "signal":
        log.info(f"stopped by signal at step {step}; resume with: {resume}")
    elif done == "time":
        log.info(f"time budget of {c.max_minutes:g} min reached at step {step} of {total} "
                 f"(epoch {step // spe + 1}); continue with: {resume}")
    elif done == "max_steps":
        log.info(f"stopped at --max-steps {c.max_steps} of {total} steps in {seconds / 60:.1f} min; "
                 f"continue with: {resume} --max-steps 0")
    else:
        log.info(f"finished {c.epochs} epochs ({total} steps) in {seconds / 60:.1f} min")


def _log_scalars(state, step, epoch, metrics, lr_g, lr_d, images_per_second):
    scalars = dict(metrics, **{"lr/G": lr_g, "lr/D": lr_d, "speed/images_per_s": images_per_second,
                               "weights/lambda_att": float(state.steps.lambda_att.numpy()),
                               "weights/lambda_cond": float(state.steps.lambda_cond.numpy())})
    _write_scalars(state, step, scalars, epoch=epoch)


def _write_scalars(state, step, scalars, **fields):
    """Scalars to TensorBoard and one line of metrics.jsonl."""
    for k, v in scalars.items():
        tf.summary.scalar(k, v, step=step)
    with open(os.path.join(state.run_dir, "metrics.jsonl"), "a") as f:
        f.write(json.dumps(dict(step=step, **fields, **scalars)) + "\n")


def _sample_batch(faces, image_size):
    """A fixed batch for the sample grids: faces spread over the data, each sent to the next one's AUs."""
    n = min(SAMPLE_FACES, len(faces))
    chosen = faces.subset(np.linspace(0, len(faces) - 1, 2 * n).round().astype(int))
    singles = make_dataset(chosen, 1, image_size, shuffle=False, flip=False)
    real, y_src = (tf.concat(t, axis=0) for t in zip(*singles.take(n)))  # files that fail to decode are skipped
    y_tgt = tf.roll(y_src, shift=1, axis=0)
    return real, y_src, y_tgt


def _evaluate(state, step):
    """Ground-truth scores on a small fixed held-out set (evaluation/groundtruth.py), to TensorBoard and
    metrics.jsonl."""
    from evaluation.groundtruth import evaluate, summary_scalars
    from models.export import InMemoryModel

    def scores(G):
        return summary_scalars(evaluate(InMemoryModel(G, state.D, state.config.net.image_size),
                                        n_identities=state.config.eval_identities,
                                        n_multi=3)[0])

    scalars = scores(state.steps.G_out)
    if state.steps.G_ema is not None:  # the average is what the run exports; the raw G's scores beside it
        raw = scores(state.G)
        scalars.update({"eval_raw/" + k[5:]: raw[k] for k in ("eval/single_gain_mean", "eval/single_gain_min",
                                                              "eval/noop_psnr", "eval/attention_mean")})
    state.G.train(), state.D.train()
    _write_scalars(state, step, scalars)
    log.info(f"step {step}: " + ", ".join(f"{k.replace('eval/', '')} {v:.3g}" for k, v in scalars.items()))


def _write_samples(state, step, real, y_src, y_tgt):
    grid = sample_grid(state.steps.G_out, real, y_src, y_tgt)
    tf.summary.image("samples/input|color|attention|output|reconstruction", grid[None], step=step)
    write_png(os.path.join(state.run_dir, "samples", f"step_{step:07d}.png"), grid)


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


def start(config, resume_dir=None, export_only=False, strategy=None, faces=None):
    """Train (and export) as train.py does. Returns (the run directory, why training stopped: train's answer, or
    "exported" for export_only). `faces`: the data, if already loaded (train.py loads it before TensorFlow starts,
    so bad data is reported at once). A run stopped by a signal is not exported.

    Under a multi-worker strategy every worker runs this with the same --run-name (or --resume): the chief
    creates and owns the run directory, the others keep their checkpoints and log in RUN_DIR/workers/.
    """
    strategy = strategy or tf.distribute.get_strategy()
    chief = is_chief(strategy)
    if config.batch % strategy.num_replicas_in_sync:
        raise UserError(None, f"--batch {config.batch} must be a multiple of the {strategy.num_replicas_in_sync} "
                              "replicas")
    if faces is None and not export_only:
        faces = load_training_data(config)  # bad data fails here, before anything is written
    if resume_dir:
        run_dir = resume_dir
    elif isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        if not config.run_name:
            raise UserError(None, "--strategy multiworker needs --run-name (the same on every worker)")
        run_dir = os.path.join(config.runs_dir, config.run_name)
        os.makedirs(run_dir, exist_ok=True)
    else:
        run_dir = new_run_dir(config)
    tf.keras.utils.set_random_seed(config.seed)
    state = TrainingState(config, run_dir, strategy=strategy)
    os.makedirs(state.work_dir, exist_ok=True)
    _setup_logging(state.work_dir, console=chief)
    restored = state.restore()  # first: a checkpoint that does not fit the flags leaves config.json as it was
    if chief:
        atomic_write_text(os.path.join(run_dir, "config.json"), config.to_json())
    if export_only:
        if not restored:
            raise UserError(run_dir, "has no checkpoint to export")
        log.info(f"restored {restored}")
        state.export()
        return run_dir, "exported"
    log.info(f"run directory: {run_dir}" + ("" if chief else f" (worker {state.worker_index})"))
    done = train(state, faces)
    if config.export and chief and done != "signal":
        state.export()
    return run_dir, done
