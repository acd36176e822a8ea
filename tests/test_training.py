"""The training machinery: schedule, targets, the two steps, the data pipeline, checkpoints."""
import json
import numpy as np
import pytest
import tensorflow as tf

from conftest import tiny_config
from data.faceset import FaceSet
from data.pipeline import make_dataset, steps_per_epoch
from models.networks import build_networks
from training.config import load_training_data
from training.loop import train
from training.schedule import learning_rate, warmup_weight
from training.state import TrainingState
from training.steps import GANimationSteps


def test_learning_rate_schedule_matches_the_official_run():
    got = [learning_rate(1e-4, e, 30, 10) for e in range(1, 31)]
    expected = [1e-4] * 21 + [k * 1e-5 for k in range(9, 0, -1)]
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert [learning_rate(1e-4, e, 3, 10) for e in (1, 2, 3)] == pytest.approx([1e-4, 2e-4 / 3, 1e-4 / 3])
    assert learning_rate(2e-4, 5, 5, 0) == 2e-4  # no decay


def _steps(name, num_aus=17, **overrides):
    config = tiny_config(**overrides)
    G, D = build_networks(config.net, name_suffix=name(""), num_aus=num_aus)
    return config, GANimationSteps(G, D, config)


def test_a_warm_up_falls_linearly_then_stays():
    assert [warmup_weight(s, 0.1, 10.0, 0) for s in (0, 5, 10**6)] == [0.1, 0.1, 0.1]  # off: the paper
    got = [warmup_weight(s, 0.1, 10.0, 100) for s in (0, 25, 50, 99, 100, 5000)]
    assert got == pytest.approx([10.0, 7.525, 5.05, 0.199, 0.1, 0.1])
    assert [warmup_weight(s, 160.0, 800.0, 4000) for s in (0, 1000, 4000)] == pytest.approx([800.0, 640.0, 160.0])


def test_the_warm_up_weight_reaches_the_generator_loss(name):
    config, steps = _steps(name, lambda_att=0.0, lambda_tv=0.0)
    real, y_src = _batch(config)
    y_tgt, alpha = steps.sample_targets(y_src), steps.sample_alpha(config.batch)
    weights = _values(steps.G)
    base = steps.generator_step(real, y_src, y_tgt, alpha)
    for w, v in zip(steps.G.trainable_weights, weights):  # the same weights, a heavier attention term
        w.assign(v)
    steps.set_attention_weight(10.0)
    heavy = steps.generator_step(real, y_src, y_tgt, alpha)
    assert float(heavy["G/total"]) - float(base["G/total"]) == pytest.approx(10.0 * float(base["G/att"]), rel=1e-3)
    assert steps.generator_step.experimental_get_tracing_count() == 1  # a variable: no retrace


@pytest.mark.slow  # 6 s under load
def test_the_au_weight_reaches_both_losses_without_a_retrace(name):
    config, steps = _steps(name, lambda_cond=1.0)
    real, y_src = _batch(config)
    y_tgt, alpha = steps.sample_targets(y_src), steps.sample_alpha(config.batch)
    g_weights, d_weights = _values(steps.G), _values(steps.D)

    def both():
        for model, values in ((steps.G, g_weights), (steps.D, d_weights)):  # the same weights for every call
            for w, v in zip(model.trainable_weights, values):
                w.assign(v)
        return steps.critic_step(real, y_src, y_tgt, alpha), steps.generator_step(real, y_src, y_tgt, alpha)

    d1, g1 = both()
    steps.set_au_weight(101.0)
    d2, g2 = both()
    assert float(d2["D/total"]) - float(d1["D/total"]) == pytest.approx(100.0 * float(d1["D/cond"]), rel=1e-3)
    assert float(g2["G/total"]) - float(g1["G/total"]) == pytest.approx(100.0 * float(g1["G/cond"]), rel=1e-3)
    assert steps.critic_step.experimental_get_tracing_count() == 1
    assert steps.generator_step.experimental_get_tracing_count() == 1


@pytest.mark.slow
def test_training_follows_both_warm_ups(tmp_path, name):
    config = tiny_config(epochs=2, eval_every=0, log_every=1, att_warmup_steps=4, lambda_att_start=2.0,
                         lambda_att=0.1, cond_warmup_steps=4, lambda_cond_start=900.0, lambda_cond=100.0)
    run = TrainingState(config, str(tmp_path), name_suffix=name(""))
    train(run, load_training_data(config))
    with open(tmp_path / "metrics.jsonl") as f:
        logged = [json.loads(line) for line in f if '"weights/lambda_cond"' in line]
    cond = [r["weights/lambda_cond"] for r in logged]
    att = [r["weights/lambda_att"] for r in logged]
    assert cond[:4] == pytest.approx([900.0, 700.0, 500.0, 300.0]) and set(cond[4:]) <= {100.0}
    assert att[:4] == pytest.approx([2.0, 1.525, 1.05, 0.575]) and att[4:] == pytest.approx([0.1] * (len(att) - 4))


@pytest.mark.slow
def test_a_time_budget_stops_with_a_checkpoint_and_resume_continues(tmp_path, name):
    config = tiny_config(epochs=1000, max_minutes=0.02, eval_every=0)
    source = load_training_data(config)
    run = TrainingState(config, str(tmp_path), name_suffix=name("_a"))
    assert train(run, source) == "time"
    stopped = int(run.step)
    assert 0 < stopped < 1000 * 4  # stopped by the budget, long before the end
    assert int(tf.train.load_variable(tf.train.latest_checkpoint(str(tmp_path / "checkpoints")),
                                      "step/.ATTRIBUTES/VARIABLE_VALUE")) == stopped
    again = TrainingState(config, str(tmp_path), name_suffix=name("_b"))
    again.restore()
    train(again, source)
    assert int(again.step) > stopped


def test_a_signal_saves_a_checkpoint_and_stops_training(tmp_path, name, monkeypatch):
    """SIGTERM (or Ctrl-C) during a step: that step ends, a checkpoint is saved, and train says why it stopped."""
    import os
    import signal

    import training.loop as loop
    config = tiny_config(epochs=3, eval_every=0, checkpoint_every=1000)
    state = TrainingState(config, str(tmp_path), name_suffix=name(""))
    real_batch = loop._train_batch

    def batch_then_signal(state, real, y_src):
        if int(state.step) == 1:
            os.kill(os.getpid(), signal.SIGTERM)  # handled by train: it asks to stop after this step
        return real_batch(state, real, y_src)

    monkeypatch.setattr(loop, "_train_batch", batch_then_signal)
    assert train(state, load_training_data(config)) == "signal" and int(state.step) == 2
    assert tf.train.latest_checkpoint(str(tmp_path / "checkpoints")).endswith("-2")
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # train's handler is gone again


@pytest.mark.slow
def test_resume_drops_what_a_killed_run_logged_past_its_checkpoint(tmp_path, name, monkeypatch):
    """Killed at step 6 with the last checkpoint at 4 (steps 5 and 6 logged): the resumed run trains 5 and 6
    again, and metrics.jsonl and TensorBoard (its Python event loader, on every tag) hold every step once."""
    import time

    from tensorboard.backend.event_processing import plugin_event_accumulator

    def tensorboard_steps():
        events = plugin_event_accumulator.EventAccumulator(str(tmp_path / "tb"))
        events.Reload()
        steps = {tag: [e.step for e in events.Tensors(tag)] for tag in events.Tags()["tensors"]}
        assert "G/total" in steps and all(s == sorted(set(s)) for s in steps.values()), steps  # each step once
        return steps["lr/G"]

    def metric_steps():
        with open(tmp_path / "metrics.jsonl") as f:
            return [json.loads(line)["step"] for line in f if '"lr/G"' in line]

    class Killed(BaseException):
        pass

    config = tiny_config(epochs=2, log_every=1, checkpoint_every=3, eval_every=0)  # 4 steps an epoch
    source = load_training_data(config)
    run = TrainingState(config, str(tmp_path), name_suffix=name("_a"))
    real_save = TrainingState.save
    monkeypatch.setattr(TrainingState, "save",
                        lambda self: real_save(self) if int(self.step) < 6 else _raise(Killed()))
    with pytest.raises(Killed):
        train(run, source)  # checkpoints at 3 and 4 (the epoch's end); killed as it saves step 6
    monkeypatch.setattr(TrainingState, "save", real_save)
    assert metric_steps() == [1, 2, 3, 4, 5, 6] and tensorboard_steps() == [1, 2, 3, 4, 5, 6]
    second = int(time.time())
    while int(time.time()) == second:  # a resume starts a new event file, named by the second it starts in
        time.sleep(0.05)
    again = TrainingState(config, str(tmp_path), name_suffix=name("_b"))
    again.restore()
    assert int(again.step) == 4
    train(again, source)
    assert metric_steps() == [1, 2, 3, 4, 5, 6, 7, 8]
    assert tensorboard_steps() == [1, 2, 3, 4, 5, 6, 7, 8]


def _raise(exc):
    raise exc


def test_targets_are_other_samples_aus_plus_bounded_noise(name):
    _, steps = _steps(name, batch=8, target_noise=0.1)
    y_src = tf.constant(np.arange(8 * 17, dtype=np.float32).reshape(8, 17) / 200.0)
    y1, y2 = steps.sample_targets(y_src).numpy(), steps.sample_targets(y_src).numpy()
    for y_tgt in (y1, y2):
        # Each target row is some source row (the whole AU vector moves together) plus noise in [-0.1, 0.1].
        nearest = np.abs(y_tgt[:, None, :] - y_src.numpy()[None]).max(axis=2).argmin(axis=1)
        assert sorted(nearest) == list(range(8))  # a permutation across samples
        noise = y_tgt - y_src.numpy()[nearest]
        assert np.abs(noise).max() <= 0.1 and np.abs(noise).max() > 0.05
    assert not np.allclose(y1, y2)  # drawn afresh for every batch


def _batch(config, seed=0, num_aus=17):
    rng = np.random.default_rng(seed)
    s, b = config.net.image_size, config.batch
    real = tf.constant(rng.uniform(-1, 1, (b, s, s, 3)).astype(np.float32))
    y_src = tf.constant(rng.uniform(0, 1, (b, num_aus)).astype(np.float32))
    return real, y_src


def _values(model):
    return [w.numpy().copy() for w in model.trainable_weights]


def _changed(before, model):
    return any(not np.array_equal(a, w.numpy()) for a, w in zip(before, model.trainable_weights))


@pytest.mark.parametrize("conditioning, num_aus", [("tile", 17), ("adain", 17), ("tile", 5), ("adain", 5)])
@pytest.mark.slow
def test_critic_and_generator_steps_update_only_their_network(name, conditioning, num_aus):
    """Both generators, with the 17 AUs and with a label of another size."""
    config, steps = _steps(name, num_aus, conditioning=conditioning)
    real, y_src = _batch(config, num_aus=num_aus)
    y_tgt, alpha = steps.sample_targets(y_src), steps.sample_alpha(config.batch)
    g0, d0 = _values(steps.G), _values(steps.D)
    d_metrics = steps.critic_step(real, y_src, y_tgt, alpha)
    assert set(d_metrics) == {"D/adv", "D/gp", "D/cond", "D/total"}
    assert all(np.isfinite(float(v)) for v in d_metrics.values())
    assert _changed(d0, steps.D) and not _changed(g0, steps.G)
    d1 = _values(steps.D)
    g_metrics = steps.generator_step(real, y_src, y_tgt, alpha)
    assert set(g_metrics) == {"G/adv", "G/cond", "G/cyc", "G/att", "G/tv", "G/total"}
    m = {k: float(v) for k, v in g_metrics.items()}
    total = m["G/adv"] + 160 * m["G/cond"] + 10 * m["G/cyc"] + 0.1 * m["G/att"] + 1e-5 * m["G/tv"]
    assert m["G/total"] == pytest.approx(total, rel=1e-5)  # the one visible weighted sum
    assert _changed(g0, steps.G) and not _changed(d1, steps.D)


def test_steps_trace_once(name):
    config, steps = _steps(name)
    for seed in range(3):
        real, y_src = _batch(config, seed)
        y_tgt, alpha = steps.sample_targets(y_src), steps.sample_alpha(config.batch)
        steps.critic_step(real, y_src, y_tgt, alpha)
        steps.generator_step(real, y_src, y_tgt, alpha)
    assert steps.critic_step.experimental_get_tracing_count() == 1
    assert steps.generator_step.experimental_get_tracing_count() == 1


def _source(n=10, size=8, paths=None):
    rng = np.random.default_rng(0)
    aus = rng.uniform(0, 5, (n, 17)).astype(np.float32)
    images = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    return FaceSet(aus=aus, ids=[f"s{i}" for i in range(n)], images=images)


def test_pipeline_batches_order_and_resume_skip():
    source = _source()
    assert steps_per_epoch(source, 3) == 3
    batches = list(make_dataset(source, 3, 8, epoch=1, seed=7))
    assert len(batches) == 3
    real, y = batches[0]
    assert real.shape == (3, 8, 8, 3) and y.shape == (3, 17)
    assert -1.0 <= float(tf.reduce_min(real)) and float(tf.reduce_max(real)) <= 1.0
    assert float(tf.reduce_max(y)) <= 1.0  # AUs on the networks' [0, 1] scale
    again = list(make_dataset(source, 3, 8, epoch=1, seed=7))
    for (a, ya), (b, yb) in zip(batches, again):  # deterministic per epoch: resumable
        np.testing.assert_array_equal(a.numpy(), b.numpy())
        np.testing.assert_array_equal(ya.numpy(), yb.numpy())
    skipped = list(make_dataset(source, 3, 8, epoch=1, seed=7, skip_batches=2))
    assert len(skipped) == 1
    np.testing.assert_array_equal(skipped[0][0].numpy(), batches[2][0].numpy())
    other = list(make_dataset(source, 3, 8, epoch=2, seed=7))
    assert not all(np.array_equal(a[1].numpy(), b[1].numpy()) for a, b in zip(batches, other))


def test_pipeline_flips_horizontally_and_keeps_labels():
    source = _source(n=64)
    plain = np.concatenate([b[0].numpy() for b in make_dataset(source, 8, 8, shuffle=False, flip=False)])
    flipped = np.concatenate([b[0].numpy() for b in make_dataset(source, 8, 8, shuffle=False, flip=True)])
    same = [np.array_equal(p, f) for p, f in zip(plain, flipped)]
    mirrored = [np.array_equal(p[:, ::-1], f) for p, f in zip(plain, flipped)]
    assert all(s or m for s, m in zip(same, mirrored))
    assert 16 < sum(mirrored) < 48


def test_pipeline_reads_and_resizes_image_files(tmp_path):
    import cv2
    paths = []
    for i in range(4):
        p = str(tmp_path / f"{i}.png")
        cv2.imwrite(p, np.full((20, 30, 3), 40 * i, np.uint8))
        paths.append(p)
    source = FaceSet(aus=np.zeros((4, 17)), ids=list("abcd"), paths=paths)
    (real, _), = list(make_dataset(source, 4, 16, shuffle=False, flip=False))
    assert real.shape == (4, 16, 16, 3)
    np.testing.assert_allclose(real.numpy()[:, 0, 0, 0], [40 * i / 127.5 - 1 for i in range(4)], atol=1e-6)


@pytest.mark.slow
def test_checkpoint_restores_weights_optimizers_and_step(tmp_path, name):
    config = tiny_config()
    run = TrainingState(config, str(tmp_path), name_suffix=name("_a"))
    real, y_src = _batch(config)
    for _ in range(2):
        y_tgt, alpha = run.steps.sample_targets(y_src), run.steps.sample_alpha(config.batch)
        run.steps.critic_step(real, y_src, y_tgt, alpha)
        run.steps.generator_step(real, y_src, y_tgt, alpha)
        run.step.assign_add(1)
    run.save()
    alpha = run.steps.sample_alpha(config.batch)  # the RNG state is restored too: the same draw comes next
    expected = run.steps.critic_step(real, y_src, y_src, alpha)  # the next step from the saved state

    other = TrainingState(config, str(tmp_path), name_suffix=name("_b"))
    assert other.restore()
    assert int(other.step) == 2
    assert int(other.steps.opt_d.iterations) == 2 and int(other.steps.opt_g.iterations) == 2
    for a, b in zip(run.G.trainable_weights, other.G.trainable_weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    np.testing.assert_array_equal(other.steps.sample_alpha(config.batch).numpy(), alpha.numpy())
    got = other.steps.critic_step(real, y_src, y_src, alpha)
    # Same weights and Adam moments: the same next step.
    for k in expected:
        assert float(got[k]) == pytest.approx(float(expected[k]), rel=1e-4, abs=1e-6)


# config.json as a run written before the networks had their own NetworkConfig (flat keys; only the options of its
# day: no --g-ema, --gan-loss, --max-steps, ...).
OLD_CONFIG_JSON = """{
  "adain_dim": 16, "allow_pickle": false, "batch": 4, "beta1": 0.5, "beta2": 0.999, "checkpoint_every": 500,
  "checkpoint_minutes": 10.0, "conditioning": "adain", "cpu_devices": 0, "critic_steps": 5, "d_conv_dim": 8,
  "d_layers": 5, "data": null, "decay_epochs": 10, "epochs": 2, "eval_every": 1000, "export": true, "flip": true,
  "g_conv_bias": false, "g_conv_dim": 8, "g_norm_affine": true, "image_size": 32, "keep_checkpoints": 3,
  "lambda_att": 0.1, "lambda_cond": 160.0, "lambda_cyc": 10.0, "lambda_gp": 10.0, "lambda_tv": 1e-05,
  "log_every": 1, "lr_d": 0.0001, "lr_g": 0.0001, "min_confidence": null, "n_res": 1, "precision": "fp32",
  "run_name": "old", "runs_dir": "runs", "sample_every": 1000, "seed": 0, "strategy": "default", "strict": false,
  "synthetic_identities": 2, "synthetic_per_identity": 8, "target_noise": 0.1
}"""


def test_an_old_flat_config_json_loads_resumes_and_is_written_back_flat(tmp_path):
    import train
    from models.config import NetworkConfig
    from training.config import config_from_args, read_run_config
    (tmp_path / "config.json").write_text(OLD_CONFIG_JSON)
    config = read_run_config(str(tmp_path))
    assert config.net == NetworkConfig(image_size=32, g_conv_dim=8, d_conv_dim=8, n_res=1, d_layers=5,
                                       conditioning="adain", adain_dim=16)
    assert (config.epochs, config.batch, config.g_ema, config.max_steps) == (2, 4, 0.0, 0)  # newer: defaults
    written = json.loads(config.to_json())
    old = json.loads(OLD_CONFIG_JSON)
    assert {k: written[k] for k in old} == old and not any(isinstance(v, dict) for v in written.values())
    _, args = train.parse_args(["--resume", str(tmp_path), "--adain-dim", "32"])
    with pytest.raises(ValueError, match="--adain-dim cannot change when resuming: .* --adain-dim 16"):
        config_from_args(args, config, resolve=False)
    _, args = train.parse_args(["--resume", str(tmp_path), "--epochs", "3", "--adain-dim", "16"])
    resumed = config_from_args(args, config, resolve=False)
    assert resumed.epochs == 3 and resumed.net == config.net


@pytest.mark.parametrize("conditioning", ["tile", "adain"])
@pytest.mark.slow
def test_bf16_mixed_precision_stays_finite_and_close_to_fp32(name, conditioning):
    """The same weights and batches through fp32 and bf16 networks: losses agree to bf16's precision."""
    config, fp32 = _steps(name, conditioning=conditioning)
    _, bf16 = _steps(name, precision="bf16", conditioning=conditioning)
    for a, b in zip(fp32.G.all_weights + fp32.D.all_weights, bf16.G.all_weights + bf16.D.all_weights):
        b.assign(a)
    assert bf16.G.all_weights[0].dtype == tf.float32  # weights stay float32
    real, y_src = _batch(config)
    for step in range(6):
        y_tgt, alpha = fp32.sample_targets(y_src), fp32.sample_alpha(config.batch)
        d32, d16 = fp32.critic_step(real, y_src, y_tgt, alpha), bf16.critic_step(real, y_src, y_tgt, alpha)
        if step == 0:  # before the weights part ways
            for k in d32:
                assert float(d16[k]) == pytest.approx(float(d32[k]), rel=0.05, abs=0.02), k
        g16 = bf16.generator_step(real, y_src, y_tgt, alpha)
        fp32.generator_step(real, y_src, y_tgt, alpha)
        assert all(np.isfinite(float(v)) for v in {**d16, **g16}.values())
    for a, b in zip(fp32.G.trainable_weights, bf16.G.trainable_weights):
        assert np.isfinite(b.numpy()).all()
        assert np.abs(a.numpy() - b.numpy()).max() <= 2 * 6 * config.lr_g + 1e-6  # within Adam's step size


def test_logged_images_per_second_count_the_step_just_done():
    """The loop logs a step's speed before the progress line is updated: it passes the step."""
    from training.progress import Progress
    progress = Progress(10, start_step=2, enabled=False)
    progress.t0 -= 2.0  # two seconds since the start
    progress.update(3, 1, 1, 4, {})
    assert progress.images_per_second(4, step=4) == pytest.approx(2 * 4 / 2.0, rel=0.01)
    assert progress.images_per_second(4) == pytest.approx(1 * 4 / 2.0, rel=0.01)
