"""Choosing a tf.distribute strategy for train.py --strategy.

  default      one device: the GPU when TensorFlow sees one, else the CPU
  mirrored     MirroredStrategy over all local GPUs, or over --cpu-devices logical CPU devices (for testing)
  multiworker  MultiWorkerMirroredStrategy across machines described by the TF_CONFIG environment variable
               ({"cluster": {"worker": ["host1:port", "host2:port"]}, "task": {"type": "worker", "index": 0}});
               worker 0 is the chief.

Strategies must exist before TensorFlow's runtime starts (MultiWorkerMirroredStrategy sets up collective ops,
logical CPU devices can only be declared before): call `make_strategy` first, right after importing TensorFlow.
"""
import json
import os

import tensorflow as tf

from utils.cli import quiet_stderr
from utils.errors import UserError

STRATEGIES = ("default", "mirrored", "multiworker")


def make_strategy(kind="default", cpu_devices=0):
    """The tf.distribute strategy for --strategy KIND (see the module docstring)."""
    if kind not in STRATEGIES:
        raise UserError(None, f"--strategy must be one of {', '.join(STRATEGIES)}, not {kind}")
    if kind == "multiworker" and "TF_CONFIG" not in os.environ:
        raise UserError(None, "--strategy multiworker needs the TF_CONFIG environment variable "
                              "(see README, 'Several GPUs and machines')")
    with quiet_stderr():
        if cpu_devices > 1:
            cpu = tf.config.list_physical_devices("CPU")[0]
            tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * cpu_devices)
        if kind == "multiworker":
            strategy = tf.distribute.MultiWorkerMirroredStrategy()
        elif kind == "mirrored":
            devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
            strategy = tf.distribute.MirroredStrategy([d.name for d in devices])
        else:
            strategy = tf.distribute.get_strategy()
        import tensorlayer  # noqa: F401  (importing it starts the runtime: only now)
    return strategy


def worker_info():
    """(index, count) of this worker in TF_CONFIG; (0, 1) without it."""
    config = json.loads(os.environ.get("TF_CONFIG", "{}") or "{}")
    workers = config.get("cluster", {}).get("worker", [])
    task = config.get("task", {})
    return int(task.get("index", 0)), max(1, len(workers))


def is_chief(strategy):
    """The worker that writes logs, checkpoints into the run directory, samples and the export."""
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return strategy.cluster_resolver.task_id == 0
    return True
