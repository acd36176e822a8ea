"""Does an AU regressor's input gradient point at the true edit?  (docs/learning.md, "The AU head's gradient")

Trains the critic's architecture as an AU regressor alone on the quickstart's faces (32 px, 200 identities x 25
faces), plainly or with one of the robustness options, then probes it on the held-out single-AU edits of
evaluation/groundtruth.py (8 identities x 17 AUs x intensities 1, 2.5, 5, from a neutral face):

- cos: the cosine between the gradient that lowers the AU loss at the source image and the true change
  (truth - source), averaged over the edits: 0 = unrelated, 1 = the gradient is the edit;
- descent: the source image moved by steepest descent (L2 steps of --step) on 160 x the AU loss against the
  regressor, scored like a generator's output: gain, and error on the changed / other pixels of the region.

    python docs/au_head_probe.py --head plain
    python docs/au_head_probe.py --head adversarial --eps 1 --pgd-steps 3
    python docs/au_head_probe.py --head jacobian --weight 1      # --head noise --noise 0.1
    python docs/au_head_probe.py --from-run runs/RUN [--teacher]  # a run's critic (or --au-teacher's teacher)

One core, fp32; about 1 to 4 minutes per head on a Zen 4 core. Prints one JSON line.
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from utils.cli import ArgumentParser, quiet_tensorflow, run_main  # noqa: E402


def _import_tensorflow():
    """TensorFlow and the project's modules that need it, imported quietly once the flags are checked."""
    global tf, losses, make_synthetic_faces, render_face, _gain, _l1, edit_regions, error_split, make_cases
    global get_discriminator, make_optimizer
    tf = quiet_tensorflow()
    import losses
    from data.synthetic import make_synthetic_faces, render_face
    from evaluation.groundtruth import _gain, _l1, edit_regions, error_split, make_cases
    from models.networks import get_discriminator
    from training.optimizers import make_optimizer


def train_regressor(args):
    faces = make_synthetic_faces(200, 25, 32, seed=0)
    images = faces.images.astype(np.float32) / 127.5 - 1.0
    labels = faces.aus.astype(np.float32) / 5.0
    net = get_discriminator(32, args.width, 5, name="probe")
    net.train()  # (no dropout or batch norm: the mode changes nothing, TensorLayer needs one)
    head = lambda x: net(x)[1]  # noqa: E731
    opt = make_optimizer(5e-4, 0.5, 0.999)
    opt.build(net.trainable_weights)

    @tf.function
    def step(x, y):
        if args.head == "adversarial":  # clean and perturbed images, as --au-adversarial
            start = 1e-3 * tf.random.normal(tf.shape(x))
            x = tf.concat([x, losses.au_adversarial_images(head, x, y, start, args.eps, args.pgd_steps)], 0)
            y = tf.concat([y, y], 0)
        elif args.head == "noise":  # as --au-noise
            x = x + tf.random.uniform([tf.shape(x)[0], 1, 1, 1], 0, args.noise) * tf.random.normal(tf.shape(x))
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(head(x) - y))
            if args.head == "jacobian":  # as --lambda-au-jacobian at real images
                loss += args.weight * losses.au_jacobian_penalty(head, x, tf.random.normal(tf.shape(y)))
        grads = tape.gradient(loss, net.trainable_weights)  # the realness head gets none
        opt.apply_gradients([(g, w) for g, w in zip(grads, net.trainable_weights) if g is not None])

    rng = np.random.default_rng(args.seed)
    for _ in range(args.steps):
        k = rng.integers(0, len(images), 16)
        step(tf.constant(images[k]), tf.constant(labels[k]))
    return head


def run_head(run, teacher):
    """The AU head of a run's last checkpoint, built in fp32."""
    import dataclasses
    import tempfile
    from training.config import TrainConfig
    from training.state import TrainingState
    with open(os.path.join(run, "config.json")) as fh:
        config = TrainConfig.from_dict(json.load(fh))
    config = dataclasses.replace(config, net=dataclasses.replace(config.net, precision="fp32"))
    state = TrainingState(config, tempfile.mkdtemp())
    state.checkpoint.restore(tf.train.latest_checkpoint(os.path.join(run, "checkpoints"))).expect_partial()
    print(f"{run}: step {int(state.step)}", file=sys.stderr)
    net = state.steps.T if teacher else state.D
    return lambda x: net(x)[1]


def probe(head, args):
    cases = [c for c in make_cases(8, 0) if c.kind == "single"]
    sources = np.stack([render_face(c.identity, c.source_aus, 32) for c in cases])
    truths = np.stack([render_face(c.identity, c.target_aus, 32) for c in cases])
    targets = tf.constant(np.stack([c.target_aus for c in cases]) / 5.0, tf.float32)
    values = np.array([c.value for c in cases])
    regions = edit_regions(cases, 32)
    x0 = tf.constant(sources / 127.5 - 1.0, tf.float32)
    truth_error = float(np.abs(head(tf.constant(truths / 127.5 - 1.0, tf.float32)).numpy() - targets).mean() * 5)

    def loss_and_grad(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = 160.0 * tf.reduce_sum(tf.reduce_mean(tf.square(head(x) - targets), axis=1))
        return tape.gradient(loss, x)

    down = -loss_and_grad(x0).numpy().reshape(len(cases), -1)
    change = (truths.astype(np.float32) - sources.astype(np.float32)).reshape(len(cases), -1)
    cos = float(np.mean((down * change).sum(1) / (np.linalg.norm(down, axis=1) * np.linalg.norm(change, axis=1))))
    x, descent = x0, {}
    for n in range(1, max(args.report) + 1):
        g = loss_and_grad(x)
        x = tf.clip_by_value(x - args.step * g / (tf.norm(tf.reshape(g, [len(cases), -1]), axis=1)[:, None, None, None]
                                                  + 1e-12), -1.0, 1.0)
        if n in args.report:
            out = np.round((x.numpy() + 1.0) * 127.5).astype(np.uint8)
            out_err, src_err = _l1(out, truths, regions), _l1(sources, truths, regions)
            changed, unchanged = error_split(sources, truths, out, regions)
            descent[n] = dict(gain=round(_gain(out_err, src_err), 3), changed=round(changed, 3),
                              unchanged=round(unchanged, 3),
                              moved_l2=round(float(np.linalg.norm((x - x0).numpy().reshape(len(cases), -1),
                                                                  axis=1).mean()), 2),
                              **{f"gain@{v:g}": round(_gain(out_err[values == v], src_err[values == v]), 3)
                                 for v in (1, 2.5, 5)})
    true_l2 = np.linalg.norm(change / 127.5, axis=1)
    return dict(cos=round(cos, 3), au_error_on_truths=round(truth_error, 3), descent=descent,
                true_change_l2={f"{v:g}": round(float(true_l2[values == v].mean()), 2) for v in (1, 2.5, 5)})


def main():
    p = ArgumentParser(description=__doc__)
    p.add_argument("--head", choices=["plain", "adversarial", "noise", "jacobian"], default="plain")
    p.add_argument("--eps", type=float, default=1.0, help="adversarial: L2 radius per image, [-1, 1] scale")
    p.add_argument("--pgd-steps", type=int, default=3, help="adversarial: projected gradient steps")
    p.add_argument("--noise", type=float, default=0.1, help="noise: the std's upper bound")
    p.add_argument("--weight", type=float, default=1.0, help="jacobian: the penalty's weight")
    p.add_argument("--steps", type=int, default=6000, help="training steps of batch 16 (default 6000: 96k images)")
    p.add_argument("--width", type=int, default=16, help="the critic's first width (the quickstart's: 16)")
    p.add_argument("--step", type=float, default=0.05, help="descent: L2 length of each step")
    p.add_argument("--report", type=lambda s: [int(v) for v in s.split(",")], default=[10, 25, 100],
                   help="descent: the step counts reported")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--from-run", help="probe the AU head of this run's last checkpoint (fp32) instead of training one")
    p.add_argument("--teacher", action="store_true", help="with --from-run: probe the run's --au-teacher")
    args = p.parse_args()
    if args.from_run and not os.path.isfile(os.path.join(args.from_run, "config.json")):
        p.error(f"--from-run {args.from_run}: not a run directory (no config.json)")
    _import_tensorflow()
    if args.from_run and not tf.train.latest_checkpoint(os.path.join(args.from_run, "checkpoints")):
        p.error(f"--from-run {args.from_run}: the run has no checkpoint")
    tf.random.set_seed(args.seed)
    start = time.time()
    head = run_head(args.from_run, args.teacher) if args.from_run else train_regressor(args)
    result = dict(vars(args), **probe(head, args), seconds=round(time.time() - start))
    print(json.dumps(result))


if __name__ == "__main__":
    run_main(main)
