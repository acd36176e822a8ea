"""tf.distribute: mirrored training on 2 logical CPU devices, and two workers on 127.0.0.1 with TF_CONFIG."""
import json
import os
import socket
import subprocess
import sys

import numpy as np
import tensorflow as tf

import pytest

from conftest import ROOT
from conftest import TINY as TINY_NETWORKS

TINY = TINY_NETWORKS + ["--eval-every", "0", "--seed", "3", "--checkpoint-every", "3"]
pytestmark = [pytest.mark.slow, pytest.mark.subprocess]  # trains on two replicas and two worker processes
# Summation order differs between one device and an all-reduce over two halves: float32 rounding. Adam turns a
# gradient that is zero up to rounding into a full +-lr step whatever its size (its first step is lr * sign(g)), so
# a few weights (measured 0.26%, allowed 1%) may differ by up to 2 lr per step; all others agree within 1e-6.
TOLERANCE, FLIPPED_FRACTION, MAX_ADAM_FLIP = 1e-6, 1e-2, 2 * 1e-4 * 5


def train(cwd, *args, env=None):
    return subprocess.Popen([sys.executable, os.path.join(ROOT, "train.py"), *TINY, *args], cwd=cwd,
                            env=dict(os.environ, PYTHONPATH=ROOT, **(env or {})),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(*procs, timeout=300):
    for p in procs:
        out, err = p.communicate(timeout=timeout)
        assert p.returncode == 0, err


def weights(checkpoint_dir):
    """{name: array} of G's and D's weights in the newest checkpoint, and its step."""
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(checkpoint_dir)))
    names = [k for k in reader.get_variable_to_shape_map() if k.startswith(("G/", "D/")) and "VARIABLE_VALUE" in k]
    return {k: reader.get_tensor(k) for k in names}, int(reader.get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE"))


def assert_same(a, b, tolerance, flips=0.0, flip_size=0.0):
    """Weights equal within `tolerance`, except a fraction `flips` of them within `flip_size`."""
    assert a.keys() == b.keys() and len(a) > 20
    diffs = np.concatenate([np.abs(a[k] - b[k]).ravel() for k in a])
    assert (diffs > tolerance).mean() <= flips, (diffs > tolerance).mean()
    assert diffs.max() <= max(tolerance, flip_size), diffs.max()


def test_mirrored_on_two_cpus_matches_one_device(tmp_path):
    """5 critic steps and 1 generator step on the same global batches: the same weights within float rounding."""
    five_steps = ["--synthetic-per-identity", "10", "--epochs", "1", "--no-export"]
    single = train(tmp_path, *five_steps, "--run-name", "single")
    finish(single)
    mirrored = train(tmp_path, *five_steps, "--run-name", "mirrored", "--strategy", "mirrored", "--cpu-devices", "2")
    finish(mirrored)
    w1, s1 = weights(tmp_path / "runs" / "single" / "checkpoints")
    w2, s2 = weights(tmp_path / "runs" / "mirrored" / "checkpoints")
    assert s1 == s2 == 5
    assert_same(w1, w2, TOLERANCE, FLIPPED_FRACTION, MAX_ADAM_FLIP)


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _workers(tmp_path, *args):
    cluster = {"worker": [f"127.0.0.1:{p}" for p in _free_ports(2)]}
    procs = [train(tmp_path, "--strategy", "multiworker", *args,
                   env={"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})})
             for i in range(2)]
    finish(*procs)


def test_two_workers_end_identical_and_resume_from_the_chief(tmp_path):
    run_dir = tmp_path / "runs" / "mw"
    _workers(tmp_path, "--epochs", "2", "--run-name", "mw")
    chief, chief_step = weights(run_dir / "checkpoints")
    other, other_step = weights(run_dir / "workers" / "worker-1" / "checkpoints")
    assert chief_step == other_step == 8  # 16 faces, a global batch of 4 split over 2 workers, 2 epochs
    assert_same(chief, other, 0.0)
    assert (run_dir / "export" / "saved_model.pb").exists()  # exported once, by the chief
    assert not (run_dir / "workers" / "worker-1" / "export").exists()

    _workers(tmp_path, "--resume", str(run_dir), "--epochs", "3")
    log = (run_dir / "log.txt").read_text()
    assert "resuming at step 8" in log and "finished 3 epochs (12 steps)" in log
    assert "resuming at step 8" in (run_dir / "workers" / "worker-1" / "log.txt").read_text()
    chief, chief_step = weights(run_dir / "checkpoints")
    other, other_step = weights(run_dir / "workers" / "worker-1" / "checkpoints")
    assert chief_step == other_step == 12
    assert_same(chief, other, 0.0)


def test_strategy_errors(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    result = subprocess.run([sys.executable, os.path.join(ROOT, "train.py"), *TINY, "--strategy", "multiworker"],
                            cwd=tmp_path, env=dict(env, PYTHONPATH=ROOT), capture_output=True, text=True)
    assert result.returncode == 2 and "TF_CONFIG" in result.stderr and "Traceback" not in result.stderr
    result = subprocess.run([sys.executable, os.path.join(ROOT, "train.py"), *TINY, "--strategy", "mirrored",
                             "--cpu-devices", "3"], cwd=tmp_path, env=dict(env, PYTHONPATH=ROOT),
                            capture_output=True, text=True)
    assert result.returncode == 2 and "multiple of the 3 replicas" in result.stderr
    assert not (tmp_path / "runs").exists()
