"""The training options beyond the paper (all off by default): each does what its flag says, and breaks a test
when it stops doing it."""
import json
import os

import numpy as np
import pytest
import tensorflow as tf

import losses
from conftest import tiny_config
from models.export import LoadedModel
from models.networks import build_networks
from training.config import TrainConfig, load_training_data, resolve_precision
from training.loop import train
from training.state import TrainingState
from training.steps import GANimationSteps, generate


def _steps(name, **overrides):
    config = tiny_config(**overrides)
    G, D = build_networks(config.net, name_suffix=name(""))
    return config, GANimationSteps(G, D, config)


def _batch(config, seed=0):
    rng = np.random.default_rng(seed)
    s, b = config.net.image_size, config.batch
    return (tf.constant(rng.uniform(-1, 1, (b, s, s, 3)).astype(np.float32)),
            tf.constant(rng.uniform(0, 1, (b, 17)).astype(np.float32)))


def _values(model):
    return [w.numpy().copy() for w in model.all_weights]


def _set(model, values):
    for w, v in zip(model.all_weights, values):
        w.assign(v)


def _inputs(steps, config, seed=0):
    real, y_src = _batch(config, seed)
    return real, y_src, steps.sample_targets(y_src), steps.sample_alpha(config.batch), steps.sample_extras(real)


def _twins(name, **option):
    """(config, plain steps, steps with `option`) from the same weights, the critic's scaled by 5: initialised with
    std 0.02, the critic reads about 0 whatever its input, and these tests need heads that depend on it."""
    config, plain = _steps(name)
    _, other = _steps(name, **option)
    _set(other.G, _values(plain.G))
    for w in plain.D.all_weights:
        w.assign(w * 5.0)
    _set(other.D, _values(plain.D))
    return config, plain, other


def test_the_defaults_are_the_paper():
    c = TrainConfig()
    assert (c.adam, c.gan_loss, c.g_ema, c.lambda_au_jacobian, c.au_noise, c.au_head_start, c.lambda_color_tv,
            c.lambda_idt, c.lambda_edit_l1, c.au_blur, c.au_adversarial, c.au_teacher, c.max_steps) == (
        "torch", "wgan-gp", 0.0, 0.0, 0.0, 0, 0.0, 0.0, 0.0, 0.0, 0.0, False, 0)


@pytest.mark.parametrize("flag", ["au_blur", "au_adversarial", "lambda_edit_l1", "lambda_au_jacobian", "lr_g", "g_ema"])
@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_a_weight_or_rate_that_is_not_finite_is_refused(flag, value):
    with pytest.raises(ValueError, match=f"^--{flag.replace('_', '-')} must be a finite number$"):
        TrainConfig(**{flag: value}).validate()


# --- --g-ema ---

def _ema_run(tmp_path, name, suffix, **overrides):
    config = tiny_config(g_ema=0.9, eval_every=0, **overrides)
    return TrainingState(config, str(tmp_path), name_suffix=name(suffix))


@pytest.mark.slow  # 11 s under load
def test_the_moving_average_follows_its_formula(tmp_path, name):
    run = _ema_run(tmp_path, name, "_a")
    steps = run.steps
    np.testing.assert_array_equal(steps.G_ema.all_weights[0].numpy(), steps.G.all_weights[0].numpy())  # starts at G
    for n in range(3):
        average = _values(steps.G_ema)
        steps.generator_step(*_inputs(steps, run.config, n))
        decay = min(0.9, (1 + n) / (10 + n))  # 0.1, 0.18, 0.25: the ramp-up, then 0.9
        for a, w, e in zip(average, steps.G.all_weights, steps.G_ema.all_weights):
            np.testing.assert_allclose(e.numpy(), decay * a + (1 - decay) * w.numpy(), rtol=1e-5, atol=1e-7)
    assert int(steps.ema_updates) == 3
    assert steps.generator_step.experimental_get_tracing_count() == 1


@pytest.mark.slow  # 12 s under load
def test_the_moving_average_is_checkpointed_resumed_and_exported(tmp_path, name):
    run = _ema_run(tmp_path, name, "_a", epochs=1)
    train(run, load_training_data(run.config))  # 4 steps, 1 generator step every 5: nothing yet;
    # move the average by hand to tell it from G
    for w in run.steps.G_ema.all_weights:
        w.assign(w * 0.5)
    run.save()
    again = _ema_run(tmp_path, name, "_b", epochs=1)
    again.restore()
    for a, b in zip(run.steps.G_ema.all_weights, again.steps.G_ema.all_weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    out = again.export()
    model = LoadedModel(out)
    assert "moving average" in model.metadata["generator"]
    images = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    aus = np.full((2, 17), 2.0, np.float32)
    from models.export import InMemoryModel
    expected = InMemoryModel(again.steps.G_ema, again.D, 32).edit(images, aus)["images"]
    of_g = InMemoryModel(again.G, again.D, 32).edit(images, aus)["images"]
    np.testing.assert_array_equal(model.edit(images, aus)["images"], expected)  # the average, not G
    assert not np.array_equal(expected, of_g)


@pytest.mark.slow  # 18 s under load
def test_turning_the_average_on_at_resume_starts_it_at_g(tmp_path, name):
    config = tiny_config(eval_every=0, epochs=1)
    plain = TrainingState(config, str(tmp_path), name_suffix=name("_a"))
    train(plain, load_training_data(config))
    run = _ema_run(tmp_path, name, "_b", epochs=1)
    run.restore()
    for a, b in zip(plain.G.all_weights, run.steps.G_ema.all_weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


# --- the robust AU head ---

@pytest.mark.slow  # 8 s under load
def test_the_au_jacobian_penalty_enters_the_critic_loss(name):
    config, steps = _steps(name, lambda_au_jacobian=3.0)
    real, y_src, y_tgt, alpha, extras = _inputs(steps, config)
    assert extras["au_probe"].shape == (config.batch, 17)
    m = {k: float(v) for k, v in steps.critic_step(real, y_src, y_tgt, alpha, extras).items()}
    assert m["D/au_jacobian"] > 0
    expected = m["D/adv"] + 10 * m["D/gp"] + 160 * m["D/cond"] + 3.0 * m["D/au_jacobian"]
    assert m["D/total"] == pytest.approx(expected, rel=1e-5)


@pytest.mark.slow  # 15 s under load
@pytest.mark.parametrize("at", ["real", "interpolates"])
def test_the_au_jacobian_penalty_is_taken_where_asked(name, at):
    """--au-jacobian-at: the penalty's value is the Jacobian norm at the real images or at the gradient penalty's
    interpolates alpha * real + (1 - alpha) * G(real, y_tgt), computed before the step moves the weights."""
    tf.keras.utils.set_random_seed(0)
    config, steps = _steps(name, lambda_au_jacobian=1.0, au_jacobian_at=at)
    real, y_src, y_tgt, _, extras = _inputs(steps, config)
    alpha = tf.fill([config.batch, 1, 1, 1], 0.25)  # interpolates well away from the real images
    fake = generate(steps.G, real, y_tgt)[0]
    points = real if at == "real" else alpha * real + (1.0 - alpha) * fake
    expected = float(losses.au_jacobian_penalty(lambda x: steps.D(x)[1], points, extras["au_probe"]))
    other = float(losses.au_jacobian_penalty(lambda x: steps.D(x)[1], alpha * real + (1.0 - alpha) * fake
                                             if at == "real" else real, extras["au_probe"]))
    m = {k: float(v) for k, v in steps.critic_step(real, y_src, y_tgt, alpha, extras).items()}
    assert m["D/au_jacobian"] == pytest.approx(expected, rel=1e-3)
    assert abs(expected - other) > 1e-2 * expected  # the two places give different values: the test can tell


@pytest.mark.slow  # 15 s under load
def test_au_noise_reaches_the_au_head_only(name):
    """With --au-noise the AU loss is computed on noisy real images; the realness terms see the clean ones."""
    config, steps = _steps(name)
    _, noisy = _steps(name, au_noise=0.5)
    _set(noisy.G, _values(steps.G))
    _set(noisy.D, _values(steps.D))
    real, y_src, y_tgt, alpha, _ = _inputs(steps, config)
    extras = noisy.sample_extras(real)
    assert extras["au_noise"].shape == real.shape
    assert 0 < float(tf.math.reduce_std(extras["au_noise"])) < 0.5
    _, expected_aus = steps.D(real + extras["au_noise"])  # before either step moves the weights
    clean_m = steps.critic_step(real, y_src, y_tgt, alpha)
    noisy_m = noisy.critic_step(real, y_src, y_tgt, alpha, extras)
    assert float(noisy_m["D/adv"]) == pytest.approx(float(clean_m["D/adv"]), rel=1e-4)
    assert float(noisy_m["D/gp"]) == pytest.approx(float(clean_m["D/gp"]), rel=1e-4)
    assert float(noisy_m["D/cond"]) == pytest.approx(float(tf.reduce_mean((expected_aus - y_src) ** 2)), rel=1e-4)


def test_gaussian_blur_keeps_flat_images_and_removes_pixel_noise():
    flat = tf.fill([1, 12, 12, 3], 0.3)
    np.testing.assert_allclose(losses.gaussian_blur(flat, 1.0).numpy(), 0.3, atol=1e-6)
    checker = tf.constant(np.indices((12, 12)).sum(0) % 2 * 2.0 - 1.0, tf.float32)[None, :, :, None]
    assert float(tf.reduce_max(tf.abs(losses.gaussian_blur(checker, 1.0)))) < 0.05  # from amplitude 1
    impulse = np.zeros((1, 13, 13, 1), np.float32)
    impulse[0, 6, 6] = 1.0
    profile = losses.gaussian_blur(tf.constant(impulse), 1.0).numpy()[0, 6, 4:9, 0]
    expected = np.exp(-np.arange(-2, 3) ** 2 / 2.0)
    expected /= expected.sum()  # the separable kernel's centre row is the 1-D kernel times its centre tap
    np.testing.assert_allclose(profile, expected * expected[2], rtol=1e-5)


@pytest.mark.slow  # 35 s under load
def test_au_blur_reaches_the_au_head_only(name):
    """With --au-blur the critic's AU regression reads blurred real images, the generator's AU loss its blurred
    output; every realness term sees the images themselves."""
    config, steps, blurred = _twins(name, au_blur=1.0)
    real, y_src, y_tgt, alpha, extras = _inputs(steps, config)
    s = config.net.image_size  # images of pixel-fine stripes, so that blurring them changes what the heads read
    real = 0.9 * tf.sign(real) * tf.constant(np.indices((s, s)).sum(0) % 2 * 2.0 - 1.0, tf.float32)[None, :, :, None]
    fake = generate(steps.G, real, y_tgt)[0]
    expected_g = float(losses.expression_loss(steps.D(losses.gaussian_blur(fake, 1.0))[1], y_tgt))
    plain_g = float(losses.expression_loss(steps.D(fake)[1], y_tgt))
    g = {k: float(v) for k, v in blurred.generator_step(real, y_src, y_tgt, alpha, extras).items()}
    plain = {k: float(v) for k, v in steps.generator_step(real, y_src, y_tgt, alpha, extras).items()}
    assert g["G/cond"] == pytest.approx(expected_g, rel=1e-4) and abs(expected_g - plain_g) > 1e-3 * plain_g
    assert g["G/adv"] == pytest.approx(plain["G/adv"], rel=1e-4)
    _set(blurred.G, _values(steps.G))  # the generator steps moved both generators: the critic steps start equal
    expected_d = float(losses.expression_loss(steps.D(losses.gaussian_blur(real, 1.0))[1], y_src))
    d = {k: float(v) for k, v in blurred.critic_step(real, y_src, y_tgt, alpha, extras).items()}
    clean = {k: float(v) for k, v in steps.critic_step(real, y_src, y_tgt, alpha, extras).items()}
    assert d["D/cond"] == pytest.approx(expected_d, rel=1e-4) and abs(expected_d - clean["D/cond"]) > 1e-3 * expected_d
    assert d["D/adv"] == pytest.approx(clean["D/adv"], rel=1e-4)
    assert d["D/gp"] == pytest.approx(clean["D/gp"], rel=1e-4)


@pytest.mark.parametrize("steps", [1, 3])
def test_au_adversarial_images_find_the_worst_change_of_a_linear_head(steps):
    """For a linear AU head f(x) = <w, x>, the change of L2 norm eps that moves its reading furthest from the
    label is eps * sign(f(x) - y) * w / ||w||."""
    rng = np.random.default_rng(0)
    w = tf.constant(rng.normal(size=(1, 6, 6, 3)).astype(np.float32))
    head = lambda x: tf.reduce_sum(x * w, axis=[1, 2, 3])[:, None]  # noqa: E731
    real = tf.constant(rng.uniform(-1, 1, (4, 6, 6, 3)).astype(np.float32))
    target = tf.constant([[10.0], [-10.0], [10.0], [-10.0]])  # readings below, above, below, above the label
    moved = losses.au_adversarial_images(head, real, target, tf.zeros_like(real), 0.5, steps) - real
    side = np.sign(head(real).numpy() - target.numpy())[:, :, None, None]
    np.testing.assert_allclose(moved.numpy(), 0.5 * side * (w / tf.norm(w)).numpy(), atol=1e-5)


@pytest.mark.slow  # 24 s under load
def test_au_adversarial_trains_the_au_head_on_clean_and_perturbed_real_images(name):
    """With --au-adversarial the critic's AU regression is the mean of its error on the real images and on their
    worst perturbations; the realness terms are those of the plain step."""
    config, steps, robust = _twins(name, au_adversarial=2.0)
    real, y_src, y_tgt, alpha, _ = _inputs(steps, config)
    extras = robust.sample_extras(real)
    assert extras["au_adv_start"].shape == real.shape
    moved = losses.au_adversarial_images(lambda x: steps.D(x)[1], real, y_src, extras["au_adv_start"], 2.0)
    np.testing.assert_array_less(tf.norm(tf.reshape(moved - real, [config.batch, -1]), axis=1).numpy(), 2.0 + 1e-4)
    clean_error = float(losses.expression_loss(steps.D(real)[1], y_src))
    moved_error = float(losses.expression_loss(steps.D(moved)[1], y_src))
    assert moved_error > 1.5 * clean_error  # the perturbation is adversarial
    d = {k: float(v) for k, v in robust.critic_step(real, y_src, y_tgt, alpha, extras).items()}
    clean = {k: float(v) for k, v in steps.critic_step(real, y_src, y_tgt, alpha, {}).items()}
    assert clean["D/cond"] == pytest.approx(clean_error, rel=1e-4)
    assert d["D/cond"] == pytest.approx((clean_error + moved_error) / 2, rel=1e-4)
    assert d["D/adv"] == pytest.approx(clean["D/adv"], rel=1e-4)
    assert d["D/gp"] == pytest.approx(clean["D/gp"], rel=1e-4)


@pytest.mark.slow  # 32 s under load
def test_the_au_teacher_learns_in_the_head_start_and_then_alone_teaches_the_generator(name):
    """--au-teacher: the head start trains the teacher alone (on clean and, with --au-adversarial, perturbed real
    images); afterwards the generator's AU loss reads the frozen teacher, and the critic learns as in the paper."""
    from models.networks import build_au_teacher
    config = tiny_config(au_teacher=True, au_head_start=2, au_adversarial=1.0)
    G, D = build_networks(config.net, name_suffix=name(""))
    T = build_au_teacher(config.net, name("T"))
    steps = GANimationSteps(G, D, config, T=T)
    for w in D.all_weights + T.all_weights:  # initialised with std 0.02, both read about 0 whatever their input
        w.assign(w * 5.0)
    assert "T" in steps.checkpoint_objects() and "opt_t" in steps.checkpoint_objects()
    real, y_src, y_tgt, alpha, extras = _inputs(steps, config)
    g0, d0, t0 = _values(G), _values(D), _values(T)
    moved = losses.au_adversarial_images(lambda x: T(x)[1], real, y_src, extras["au_adv_start"], 1.0)
    expected = float(losses.expression_loss(T(tf.concat([real, moved], 0))[1], tf.concat([y_src, y_src], 0)))
    m = steps.au_step(real, y_src, extras)
    assert set(m) == {"T/cond"} and float(m["T/cond"]) == pytest.approx(expected, rel=1e-4)
    assert all(np.array_equal(a, b) for a, b in zip(_values(G) + _values(D), g0 + d0))
    t1 = _values(T)
    assert any(not np.array_equal(a, b) for a, b in zip(t1, t0))
    fake = generate(G, real, y_tgt)[0]
    from_teacher = float(losses.expression_loss(T(fake)[1], y_tgt))
    from_critic = float(losses.expression_loss(D(fake)[1], y_tgt))
    assert abs(from_teacher - from_critic) > 1e-3 * from_teacher
    g = steps.generator_step(real, y_src, y_tgt, alpha, extras)
    assert float(g["G/cond"]) == pytest.approx(from_teacher, rel=1e-4)
    plain_config, plain = _steps(name)  # the critic step is the paper's: no adversarial images for D's AU head
    _set(plain.G, _values(G))
    _set(plain.D, _values(D))
    d = steps.critic_step(real, y_src, y_tgt, alpha, extras)
    assert float(d["D/cond"]) == pytest.approx(float(plain.critic_step(real, y_src, y_tgt, alpha, {})["D/cond"]),
                                               rel=1e-4)
    assert all(np.array_equal(a, b) for a, b in zip(_values(T), t1))  # frozen after the head start


@pytest.mark.slow  # trains a tiny run
def test_the_au_teacher_cannot_be_turned_on_at_resume(tmp_path, name):
    """Its head start is over by then, so it would teach untrained: one line, before anything is written."""
    from utils.errors import UserError
    config = tiny_config(eval_every=0, epochs=1)
    train(TrainingState(config, str(tmp_path), name_suffix=name("_a")), load_training_data(config))
    teacher = TrainingState(tiny_config(eval_every=0, epochs=1, au_teacher=True, au_head_start=1), str(tmp_path),
                            name_suffix=name("_b"))
    with pytest.raises(UserError, match="trained without --au-teacher, which cannot be turned on at --resume"):
        teacher.restore()


def test_the_au_teacher_needs_a_head_start():
    with pytest.raises(ValueError, match="--au-teacher needs --au-head-start"):
        TrainConfig(au_teacher=True).validate()


@pytest.mark.slow  # 17 s under load
def test_the_au_head_start_trains_only_the_critics_au_regression(tmp_path, name):
    config = tiny_config(au_head_start=3, epochs=2, eval_every=2, eval_identities=1, sample_every=2, log_every=1,
                         critic_steps=1, att_warmup_steps=2, lambda_att_start=5.0)
    run = TrainingState(config, str(tmp_path), name_suffix=name(""))
    g0 = _values(run.G)
    real, y_src = _batch(config)
    d0 = _values(run.D)
    m = run.steps.au_step(real, y_src, {})
    assert set(m) == {"D/cond", "D/total"} and float(m["D/total"]) == pytest.approx(160 * float(m["D/cond"]))
    assert any(not np.array_equal(a, b.numpy()) for a, b in zip(d0, run.D.all_weights))
    assert all(np.array_equal(a, b.numpy()) for a, b in zip(g0, run.G.all_weights))
    train(run, load_training_data(config))
    with open(tmp_path / "metrics.jsonl") as f:
        rows = [json.loads(line) for line in f]
    evaluated = [r["step"] for r in rows if "eval/single_gain_mean" in r]
    rows = [r for r in rows if "D/total" in r]  # the training steps' rows
    assert all("D/adv" not in r and "G/total" not in r for r in rows[:3])  # steps 1-3: the AU head alone
    assert all("D/adv" in r and "G/total" in r for r in rows[3:])
    assert [r["weights/lambda_att"] for r in rows[3:5]] == pytest.approx([5.0, 2.55])  # the warm-up starts after
    # G is untouched during the head start: no evaluation or sample grid of it until the generator has trained
    assert evaluated == [4, 6, 8]
    assert sorted(os.listdir(tmp_path / "samples")) == [f"step_{s:07d}.png" for s in (4, 6, 8)]


# --- the nonsaturating loss with a lazy R1 ---

@pytest.mark.slow  # 11 s under load
def test_the_nonsaturating_critic_step_and_its_lazy_r1(name):
    config, steps = _steps(name, gan_loss="nonsaturating", r1_gamma=2.0, r1_every=4)
    real, y_src, y_tgt, alpha, extras = _inputs(steps, config)
    d0, g0 = _values(steps.D), _values(steps.G)
    plain = {k: float(v) for k, v in steps.critic_step(real, y_src, y_tgt, alpha, extras).items()}
    assert set(plain) == {"D/adv", "D/cond", "D/total"}
    assert plain["D/total"] == pytest.approx(plain["D/adv"] + 160 * plain["D/cond"], rel=1e-5)
    assert 0 < plain["D/adv"] < 2 * np.log(2) + 0.5  # logistic losses near log 2 each at the start
    _set(steps.D, d0)
    lazy = {k: float(v) for k, v in steps.critic_step_r1(real, y_src, y_tgt, alpha, extras).items()}
    assert lazy["D/r1"] > 0
    assert lazy["D/total"] == pytest.approx(plain["D/total"] + 0.5 * 2.0 * 4 * lazy["D/r1"], rel=1e-5)
    g = {k: float(v) for k, v in steps.generator_step(real, y_src, y_tgt, alpha, extras).items()}
    assert g["G/adv"] > 0  # softplus(-D(fake)), not -D(fake)
    assert [steps.r1_due(s) for s in range(6)] == [True, False, False, False, True, False]
    assert steps.critic_step.experimental_get_tracing_count() == 1
    assert steps.critic_step_r1.experimental_get_tracing_count() == 1
    assert any(not np.array_equal(a, b.numpy()) for a, b in zip(g0, steps.G.all_weights))


def test_the_wgan_default_never_runs_r1(name):
    _, steps = _steps(name)
    assert not any(steps.r1_due(s) for s in range(10))


# --- --d-projection ---

@pytest.mark.slow  # 17 s under load
def test_the_projection_critic_judges_images_with_their_labels(name):
    """With --d-projection D has a third head h(x), the realness is D_I(x) + <h(x), y> with each image's own
    labels (real: y_src, fake: y_tgt, the interpolate: both interpolated), the head learns, and off is the paper."""
    config, steps = _steps(name, d_projection=True)
    assert len(steps.D.outputs) == 3 and not tiny_config().net.d_projection
    real, y_src, y_tgt, alpha, extras = _inputs(steps, config)
    realness, _, h = steps.D(real)
    assert h.shape == (config.batch, 17)
    expected = realness + tf.reshape(tf.reduce_sum(h * y_src, axis=-1), [-1, 1, 1, 1])
    np.testing.assert_allclose(steps._realness(steps.D(real), y_src).numpy(), expected.numpy(), rtol=1e-5)
    # The critic's adversarial term uses it: recompute D/adv by hand from the weights before the step.
    fake, _, _ = generate(steps.G, real, y_tgt)
    adv = (tf.reduce_mean(steps._realness(steps.D(fake), y_tgt)) - tf.reduce_mean(steps._realness(steps.D(real), y_src)))
    head = [w for w in steps.D.all_weights if "projection" in w.name]
    assert head, "the projection head has weights"
    before = [w.numpy().copy() for w in head]
    m = steps.critic_step(real, y_src, y_tgt, alpha, extras)
    assert float(m["D/adv"]) == pytest.approx(float(adv), rel=1e-4, abs=1e-6)
    assert any(np.abs(w.numpy() - b).max() > 0 for w, b in zip(head, before)), "the projection head learns"
    # And the generator's adversarial term reads the projection with the target labels.
    outputs = steps.D(generate(steps.G, real, y_tgt)[0])
    g_adv = -tf.reduce_mean(steps._realness(outputs, y_tgt))
    g = steps.generator_step(real, y_src, y_tgt, alpha, extras)
    assert float(g["G/adv"]) == pytest.approx(float(g_adv), rel=1e-4, abs=1e-6)


# --- --g-color-residual ---

@pytest.mark.slow  # 14 s under load
def test_the_residual_color_mask_is_the_input_plus_a_change(name):
    """With --g-color-residual the color mask is clip(real + tanh(.), -1, 1): with the color head's weights at 0
    it is the input itself (the paper's mask is then 0, a gray image); off by default."""
    assert not tiny_config().net.g_color_residual
    config = tiny_config(g_color_residual=True)
    residual, _ = build_networks(config.net, name_suffix=name("_res"))
    plain, _ = build_networks(tiny_config().net, name_suffix=name("_plain"))
    real, y = _batch(config)
    real = real * 1.5  # some pixels outside [-1, 1], to see the clip
    for G in (residual, plain):
        G.eval()
        for w in G.all_weights:
            if "color" in w.name:
                w.assign(tf.zeros_like(w))
    np.testing.assert_allclose(residual([real, y])[0].numpy(), tf.clip_by_value(real, -1, 1).numpy(), atol=1e-6)
    np.testing.assert_allclose(plain([real, y])[0].numpy(), 0.0, atol=1e-6)


# --- the color mask's smoothness ---

@pytest.mark.slow  # 14 s under load
def test_color_tv_enters_the_generator_loss(name):
    config, steps = _steps(name, lambda_color_tv=2.0)
    m = {k: float(v) for k, v in steps.generator_step(*_inputs(steps, config)).items()}
    assert m["G/color_tv"] > 0
    expected = m["G/adv"] + 160 * m["G/cond"] + 10 * m["G/cyc"] + 0.1 * m["G/att"] + 1e-5 * m["G/tv"] \
        + 2.0 * m["G/color_tv"]
    assert m["G/total"] == pytest.approx(expected, rel=1e-5)


@pytest.mark.slow  # 22 s under load
def test_the_edit_sparsity_enters_the_generator_loss_and_shrinks_the_edit(name):
    """--lambda-edit-l1: mean |G(real, y_tgt) - real| joins the weighted sum; with a large weight, generator
    steps from the same weights leave a smaller edit than steps without it."""
    config, steps = _steps(name, lambda_edit_l1=3.0)
    real, y_src, y_tgt, alpha, extras = _inputs(steps, config)
    start = _values(steps.G)
    before = float(tf.reduce_mean(tf.abs(generate(steps.G, real, y_tgt)[0] - real)))
    m = {k: float(v) for k, v in steps.generator_step(real, y_src, y_tgt, alpha, extras).items()}
    assert m["G/edit_l1"] == pytest.approx(before, rel=1e-4)
    expected = m["G/adv"] + 160 * m["G/cond"] + 10 * m["G/cyc"] + 0.1 * m["G/att"] + 1e-5 * m["G/tv"] \
        + 3.0 * m["G/edit_l1"]
    assert m["G/total"] == pytest.approx(expected, rel=1e-5)
    after = {}
    for weight in (0.0, 1000.0):
        _, steps_w = _steps(name, lambda_edit_l1=weight)
        _set(steps_w.G, start), _set(steps_w.D, _values(steps.D))
        for _ in range(3):
            steps_w.generator_step(real, y_src, y_tgt, alpha, extras)
        after[weight] = float(tf.reduce_mean(tf.abs(generate(steps_w.G, real, y_tgt)[0] - real)))
    assert after[1000.0] < after[0.0]


# --- --max-steps and --precision auto ---

@pytest.mark.slow  # 14 s under load
def test_max_steps_stops_with_a_checkpoint_and_resume_continues(tmp_path, name):
    config = tiny_config(epochs=3, max_steps=5, eval_every=0)  # 3 epochs of 4 steps; stop at 5
    source = load_training_data(config)
    run = TrainingState(config, str(tmp_path), name_suffix=name("_a"))
    assert train(run, source) == "max_steps" and int(run.step) == 5
    assert tf.train.latest_checkpoint(str(tmp_path / "checkpoints")).endswith("-5")
    import dataclasses
    again = TrainingState(dataclasses.replace(config, max_steps=0), str(tmp_path), name_suffix=name("_b"))
    again.restore()
    assert train(again, source) == "finished"
    assert int(again.step) == 12


def test_precision_auto_picks_bf16_only_where_it_is_native(monkeypatch):
    import training.config as tc
    monkeypatch.setattr(tc, "native_bf16", lambda: (False, "CPU has no avx512_bf16 or amx_bf16"))
    picked = resolve_precision(TrainConfig.from_dict({"precision": "auto"}))
    assert picked.net.precision == "fp32" and "no avx512_bf16" in picked.precision_note
    monkeypatch.setattr(tc, "native_bf16", lambda: (True, "CPU has avx512_bf16"))
    picked = resolve_precision(TrainConfig.from_dict({"precision": "auto"}))
    assert picked.net.precision == "bf16" and picked.precision_note == "auto picked bf16: CPU has avx512_bf16"
    assert resolve_precision(TrainConfig.from_dict({"precision": "fp32"})).net.precision == "fp32"  # asked for: kept


def test_the_identity_loss_enters_the_generator_loss(name):
    """--lambda-idt: G asked for the source's own AUs must return the input; its L1 joins the weighted sum."""
    config, steps = _steps(name, lambda_idt=4.0)
    real, y_src, y_tgt, alpha, extras = _inputs(steps, config)
    idt, _, _ = generate(steps.G, real, y_src)  # before the step moves the weights
    expected_idt = float(tf.reduce_mean(tf.abs(idt - real)))
    m = {k: float(v) for k, v in steps.generator_step(real, y_src, y_tgt, alpha, extras).items()}
    assert m["G/idt"] == pytest.approx(expected_idt, rel=1e-4)
    expected = m["G/adv"] + 160 * m["G/cond"] + 10 * m["G/cyc"] + 0.1 * m["G/att"] + 1e-5 * m["G/tv"] + 4.0 * m["G/idt"]
    assert m["G/total"] == pytest.approx(expected, rel=1e-5)
