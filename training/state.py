"""A run's training state: what its checkpoints hold, and saving, restoring and exporting it.

    state = TrainingState(config, run_dir)    # G, D (and G_ema), their steps (optimizers, RNG), the step counter
    state.restore()                            # the run's newest checkpoint, if it has one
    train(state, faces)                        # training/loop.py
    state.save(); state.export()

RUN_DIR/checkpoints/ (tf.train.CheckpointManager) holds G, D, both Adam states, the step and the RNG state;
RUN_DIR/export/ the SavedModel (models/export.py) that infer.py loads.
"""
import itertools
import logging
import os

import tensorflow as tf

from models.export import export_saved_model
from models.networks import build_au_teacher, build_generator, build_networks
from models.transfer import transfer_networks
from training.config import read_run_config, resolve_precision
from training.distribute import is_chief, worker_info
from training.steps import GANimationSteps
from utils.errors import UserError

log = logging.getLogger("ganimation")
_sources = itertools.count()  # TensorLayer names of the networks transfer_run loads


class TrainingState:
    """The networks, their training steps (optimizers, RNG), the step counter and the checkpoint manager of one run.

    Under a multi-worker strategy, non-chief workers keep their own checkpoints (and log) under
    RUN_DIR/workers/worker-N/ and restore from the chief's."""

    def __init__(self, config, run_dir, name_suffix="", strategy=None):
        config = resolve_precision(config)  # the networks are built in fp32 or bf16, never "auto"
        self.config, self.run_dir = config, run_dir
        self.strategy = strategy or tf.distribute.get_strategy()
        self.chief = is_chief(self.strategy)
        multiworker = isinstance(self.strategy, tf.distribute.MultiWorkerMirroredStrategy)
        self.worker_index, self.num_workers = worker_info() if multiworker else (0, 1)
        self.work_dir = run_dir if self.chief else os.path.join(run_dir, "workers", f"worker-{self.worker_index}")
        rng = tf.random.Generator.from_seed(config.seed + 7919 * self.worker_index)  # outside the scope: see steps
        with self.strategy.scope():
            self.G, self.D = build_networks(config.net, name_suffix)
            G_ema = build_generator(config.net, "G_ema" + name_suffix) if config.g_ema else None
            T = build_au_teacher(config.net, "T" + name_suffix) if config.au_teacher else None
            self.steps = GANimationSteps(self.G, self.D, config, self.strategy, rng=rng, G_ema=G_ema, T=T)
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
        if self.steps.T is not None and "T" not in saved:  # its head start is over: it would teach untrained
            raise UserError(self.run_dir, "was trained without --au-teacher, which cannot be turned on at --resume "
                                          "(the teacher learns in the head start): start a new run")
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
        """Write RUN_DIR/export from the networks as they are (the moving average of G with --g-ema)."""
        out = os.path.join(self.run_dir, "export")
        c = self.config
        meta = dict(c.net.metadata(), step=int(self.step), run_dir=os.path.abspath(self.run_dir))
        if c.g_ema:
            meta["generator"] = f"moving average of the weights, decay {c.g_ema:g} (--g-ema)"
        export_saved_model(self.steps.G_out, self.D, out, meta)
        log.info(f"exported SavedModel to {out}")
        if c.tflite:  # into the folder just swapped in, each file atomically (models/tflite.py)
            from models.tflite import write_tflite
            paths = write_tflite(out)
            log.info("wrote " + ", ".join(f"{os.path.basename(p)} ({os.path.getsize(p) / 1e6:.1f} MB)" for p in paths))
        return out


def transfer_run(run_dir, num_aus, name_suffix=None):
    """The networks of a run directory's last checkpoint, moved to `num_aus` labels (models/transfer.py)."""
    state = TrainingState(read_run_config(run_dir), run_dir, name_suffix=f"_source{next(_sources)}")
    if not state.restore():
        raise UserError(run_dir, "has no checkpoint to transfer from")
    return transfer_networks(state.G, state.D, state.config.net, num_aus, name_suffix)
