"""GANimation's two training steps, each one `tf.function` taking a batch and returning named scalars.

    steps = GANimationSteps(G, D, config)               # build G, D (and this) inside strategy.scope()
    y_tgt, alpha = steps.sample_targets(y_src), steps.sample_alpha(len(y_src))
    batch = steps.distribute(real, y_src, y_tgt, alpha)  # split over the replicas (a no-op on one device)
    d_metrics = steps.critic_step(*batch)     # {"D/adv", "D/gp", "D/cond", "D/total"}
    g_metrics = steps.generator_step(*batch)  # {"G/adv", "G/cond", "G/cyc", "G/att", "G/tv", "G/total"}

Options beyond the paper (training/config.py, all off by default) add inputs and scalars: `sample_extras(real)`
draws their random tensors (a dict, passed as the steps' `extras`), `au_step` is --au-head-start's critic step,
`critic_step_r1` the nonsaturating loss's lazy R1 step, and with --g-ema the generator step updates G_ema.

The 5:1 schedule of critic to generator steps lives in plain Python (training/loop.py).
real: (B, S, S, 3) in [-1, 1]; y_src, y_tgt: (B, 17) on the [0, 1] scale; alpha: (B, 1, 1, 1), the gradient
penalty's interpolation weights. All randomness is drawn outside the steps, so a step is a pure function of its
batch and the weights: single-device and multi-replica training on the same global batches agree.

Distribution (tf.distribute): each replica computes the losses on its share of the batch (the gradient penalty
per replica, per sample) and scales its gradients by 1 / replicas; the optimizer sums them across replicas, so the
update is the mean over the global batch. Batches keep one shape, so the steps trace once.
"""
import functools

import tensorflow as tf

import losses
from models.ops import compose
from training.optimizers import make_optimizer


def generate(G, images, aus):
    """Run the generator and compose its output. Returns (output, color, attention)."""
    color, attention = G([images, aus])
    return compose(attention, images, color), color, attention


class GANimationSteps:
    """Holds the networks, their optimizers and the random generator the batches draw from.

    Create it inside `strategy.scope()` (with the networks) when a strategy is used, with an `rng` made outside.
    Everything a resumed run needs is reachable from `checkpoint_objects()`.
    G_ema: with --g-ema, a second generator of G's architecture that holds the moving average of G's weights
    (updated after every generator step; see `ema_decay`).
    """

    def __init__(self, G, D, config, strategy=None, rng=None, G_ema=None, T=None):
        self.G, self.D, self.config, self.G_ema, self.T = G, D, config, G_ema, T
        self.strategy = strategy or tf.distribute.get_strategy()
        self.G.train()
        self.D.train()
        adam = config.adam
        self.opt_g = make_optimizer(config.lr_g, config.beta1, config.beta2, adam)
        self.opt_d = make_optimizer(config.lr_d, config.beta1, config.beta2, adam)
        # Build the optimizer slots now, so a checkpoint restores into them before the first step.
        self.opt_g.build(self.G.trainable_weights)
        self.opt_d.build(self.D.trainable_weights)
        if T is not None:  # --au-teacher: its own optimizer, used in the head start only
            T.train()
            self.opt_t = make_optimizer(config.lr_d, config.beta1, config.beta2, adam)
            self.opt_t.build(T.trainable_weights)
        # One plain generator for the eager code that draws targets and alphas: under a strategy, create it
        # outside strategy.scope() and pass it in (a generator made in the scope is split per replica).
        self.rng = rng if rng is not None else tf.random.Generator.from_seed(config.seed)
        # The attention and AU weights can follow warm-up schedules (training/schedule.py): variables, so that
        # the steps trace once.
        self.lambda_att = tf.Variable(float(config.lambda_att), trainable=False, name="lambda_att")
        self.lambda_cond = tf.Variable(float(config.lambda_cond), trainable=False, name="lambda_cond")
        self.ema_updates = tf.Variable(0, dtype=tf.int64, trainable=False, name="ema_updates")
        if G_ema is not None:
            G_ema.eval()
            self.copy_to_ema()
        self.critic_step = tf.function(self._critic_step)
        self.critic_step_r1 = tf.function(functools.partial(self._critic_step, r1=True))  # nonsaturating only
        self.generator_step = tf.function(self._generator_step)
        self.au_step = tf.function(self._au_step)

    @property
    def G_out(self):
        """The generator that samples, evaluation and the export use: the moving average when there is one."""
        return self.G_ema if self.G_ema is not None else self.G

    def checkpoint_objects(self):
        """The trackable state of training: weights, optimizer moments and step counts, RNG state."""
        objects = dict(G=_Weights(self.G), D=_Weights(self.D), opt_g=self.opt_g, opt_d=self.opt_d, rng=self.rng)
        if self.G_ema is not None:
            objects.update(G_ema=_Weights(self.G_ema), ema_updates=self.ema_updates)
        if self.T is not None:
            objects.update(T=_Weights(self.T), opt_t=self.opt_t)
        return objects

    def copy_to_ema(self):
        """Start the moving average at G's current weights (a new run, or a checkpoint saved without one)."""
        for average, w in zip(self.G_ema.all_weights, self.G.all_weights):
            average.assign(w)
        self.ema_updates.assign(0)

    def set_learning_rates(self, lr_g, lr_d):
        self.opt_g.learning_rate.assign(lr_g)
        self.opt_d.learning_rate.assign(lr_d)

    def set_attention_weight(self, value):
        self.lambda_att.assign(float(value))

    def set_au_weight(self, value):
        """The AU loss weight of both steps (the paper's single lambda_y)."""
        self.lambda_cond.assign(float(value))

    def sample_targets(self, y_src):
        """Target AUs: the AUs of other samples of the batch (a fresh permutation across samples), plus
        uniform noise in [-target_noise, target_noise]. y_src: (B, 17) on the [0, 1] scale.

        The official code draws, for every sample, the AUs of a random sample of the whole training set. Both
        give each sample another sample's AUs from the data distribution; a permutation cannot give a sample its
        own AUs and needs no copy of the data set's AUs on the device (nor a pass over TFRecord shards)."""
        permutation = tf.argsort(self.rng.uniform([tf.shape(y_src)[0]]))
        noise = self.rng.uniform(tf.shape(y_src), -self.config.target_noise, self.config.target_noise)
        return tf.gather(y_src, permutation) + noise

    def sample_alpha(self, batch_size):
        """The gradient penalty's interpolation weights, U(0, 1) per sample: (B, 1, 1, 1)."""
        return self.rng.uniform([batch_size, 1, 1, 1])

    def sample_extras(self, real):
        """The random tensors of the options that need them, drawn here so that the steps stay pure: a dict,
        empty when none is on. au_probe (B, 17) N(0, 1): --lambda-au-jacobian's projections; au_noise
        (B, S, S, 3): --au-noise's pixel noise, std U(0, au_noise) per image; au_adv_start (B, S, S, 3):
        the random start of --au-adversarial's perturbation."""
        c, extras = self.config, {}
        b = int(real.shape[0])
        if c.lambda_au_jacobian:
            extras["au_probe"] = self.rng.normal([b, self.G.label_size])
        if c.au_noise:
            strength = self.rng.uniform([b, 1, 1, 1], 0.0, c.au_noise)
            extras["au_noise"] = strength * self.rng.normal(tf.shape(real))
        if c.au_adversarial:
            extras["au_adv_start"] = 1e-3 * self.rng.normal(tf.shape(real))
        return extras

    def r1_due(self, step):
        """Whether critic step `step` (0-based) computes the lazy R1 penalty (--gan-loss nonsaturating)."""
        return self.config.gan_loss == "nonsaturating" and step % self.config.r1_every == 0

    def distribute(self, *tensors):
        """Split this worker's batch over its local replicas (returned unchanged on a single device).
        Takes tensors, or dicts of tensors (the extras)."""
        if self.strategy.num_replicas_in_sync == 1:
            return tensors
        local = len(self.strategy.extended.worker_devices)

        def share(context, t):  # replica ids are global; each worker holds its own local batch
            per_replica = int(t.shape[0]) // local
            i = context.replica_id_in_sync_group % local
            return t[i * per_replica:(i + 1) * per_replica]

        def spread(t):
            return self.strategy.experimental_distribute_values_from_function(functools.partial(share, t=t))

        return tuple({k: spread(v) for k, v in t.items()} if isinstance(t, dict) else spread(t) for t in tensors)

    def _critic_step(self, real, y_src, y_tgt, alpha, extras=None, r1=False):
        args = (real, y_src, y_tgt, alpha, extras or {}, r1)
        return self._reduce(self.strategy.run(self._critic_replica, args=args))

    def _generator_step(self, real, y_src, y_tgt, alpha, extras=None):
        metrics = self._reduce(self.strategy.run(self._generator_replica, args=(real, y_src, y_tgt)))
        if self.G_ema is not None:
            self._update_ema()
        return metrics

    def _au_step(self, real, y_src, extras=None):
        return self._reduce(self.strategy.run(self._au_replica, args=(real, y_src, extras or {})))

    def _reduce(self, per_replica):
        return {k: self.strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None) for k, v in per_replica.items()}

    def ema_decay(self):
        """This update's decay: --g-ema, ramped up as min(g_ema, (1 + n) / (10 + n)) after n updates (as
        tf.train.ExponentialMovingAverage with num_updates), so that the random start is forgotten fast."""
        n = tf.cast(self.ema_updates, tf.float32)
        return tf.minimum(tf.constant(self.config.g_ema, tf.float32), (1.0 + n) / (10.0 + n))

    def _update_ema(self):
        decay = self.ema_decay()
        for average, w in zip(self.G_ema.all_weights, self.G.all_weights):
            average.assign(decay * average + (1.0 - decay) * w)
        self.ema_updates.assign_add(1)

    def _au_losses(self, real_aus, y_src, real, extras, interpolates=None):
        """The critic's AU terms: the regression on real AUs (Eq. 3), and --lambda-au-jacobian's penalty, at the
        real images or (--au-jacobian-at interpolates, when the step has them) at `interpolates`."""
        terms = {"D/cond": losses.expression_loss(real_aus, y_src)}
        total = self.lambda_cond * terms["D/cond"]
        if "au_probe" in extras:
            at = interpolates if self.config.au_jacobian_at == "interpolates" and interpolates is not None else real
            terms["D/au_jacobian"] = losses.au_jacobian_penalty(lambda x: self.D(x)[1], at, extras["au_probe"])
            total += self.config.lambda_au_jacobian * terms["D/au_jacobian"]
        return terms, total

    def _au_view(self, images, extras=None):
        """What the AU head reads: `images` (+ --au-noise's noise when `extras` has it), low-passed by a Gaussian of
        std --au-blur pixels when that is on."""
        if extras is not None and "au_noise" in extras:
            images = images + extras["au_noise"]
        return losses.gaussian_blur(images, self.config.au_blur) if self.config.au_blur else images

    def _realness(self, outputs, aus):
        """The critic's realness map from D's outputs; with --d-projection plus <h(x), y> for the labels `aus`
        (B, 17), broadcast over the map (so every loss that averages the map sees the projection once)."""
        if not self.config.net.d_projection:
            return outputs[0]
        projection = tf.reduce_sum(outputs[2] * tf.cast(aus, outputs[2].dtype), axis=-1)
        return outputs[0] + tf.reshape(projection, [-1, 1, 1, 1])

    def _critic_replica(self, real, y_src, y_tgt, alpha, extras, r1):
        c = self.config
        fake, _, _ = generate(self.G, real, y_tgt)
        fake = tf.stop_gradient(fake)
        own = "au_noise" in extras or c.au_blur > 0  # the AU head learns from its own view of the real images
        parts = [real, fake] + ([self._au_view(real, extras)] if own else [])
        robust = c.au_adversarial and self.T is None  # (with --au-teacher, --au-adversarial trains the teacher)
        if robust:  # the AU head also learns from real images moved to fool it (--au-adversarial)
            parts.append(losses.au_adversarial_images(lambda x: self.D(x)[1], real, y_src, extras["au_adv_start"],
                                                      c.au_adversarial, c.au_adversarial_steps))
        with tf.GradientTape() as tape:
            outputs = [tf.split(o, len(parts), axis=0) for o in self.D(tf.concat(parts, axis=0))]  # one pass
            aus = outputs[1]
            real_realness = self._realness([o[0] for o in outputs], y_src)
            fake_realness = self._realness([o[1] for o in outputs], y_tgt)
            # The AU head learns from the real images, or from their noisy / blurred copies (--au-noise, --au-blur).
            x_hat = alpha * real + (1.0 - alpha) * fake  # the gradient penalty's points (and the AU Jacobian's)
            if robust:  # the mean of its error on the clean and on the perturbed real images
                au_in, au_labels = tf.concat([aus[0], aus[-1]], axis=0), tf.concat([y_src, y_src], axis=0)
            else:
                au_in, au_labels = aus[-1] if own else aus[0], y_src
            terms, au_total = self._au_losses(au_in, au_labels, real, extras, x_hat)
            if c.gan_loss == "wgan-gp":
                adv = losses.critic_adversarial(real_realness, fake_realness)
                # With --d-projection the interpolate's label is interpolated the same way as its pixels.
                y_hat = tf.reshape(alpha, [-1, 1]) * y_src + (1.0 - tf.reshape(alpha, [-1, 1])) * y_tgt
                gp = losses.gradient_penalty(lambda x: self._realness(self.D(x), y_hat), real, fake, alpha)
                total = adv + c.lambda_gp * gp + au_total
                terms.update({"D/adv": adv, "D/gp": gp})
            else:  # nonsaturating, with R1 on real images every r1_every steps (this trace computes it or not)
                adv = losses.critic_nonsaturating(real_realness, fake_realness)
                total = adv + au_total
                terms["D/adv"] = adv
                if r1:
                    terms["D/r1"] = losses.r1_penalty(lambda x: self._realness(self.D(x), y_src), real)
                    total += 0.5 * c.r1_gamma * c.r1_every * terms["D/r1"]
            replica_share = total / self.strategy.num_replicas_in_sync  # the optimizer sums over replicas
        self._apply(tape, replica_share, self.D, self.opt_d)
        return dict(terms, **{"D/total": total})

    def _au_replica(self, real, y_src, extras):
        """--au-head-start: the critic learns the AUs of real images alone (no generator, no adversarial term); with
        --au-teacher the teacher does instead, on clean and (--au-adversarial) perturbed real images."""
        if self.T is not None:
            parts, labels = [real], [y_src]
            if self.config.au_adversarial:
                parts.append(losses.au_adversarial_images(lambda x: self.T(x)[1], real, y_src, extras["au_adv_start"],
                                                          self.config.au_adversarial, self.config.au_adversarial_steps))
                labels.append(y_src)
            with tf.GradientTape() as tape:
                total = losses.expression_loss(self.T(tf.concat(parts, axis=0))[1], tf.concat(labels, axis=0))
                replica_share = self.lambda_cond * total / self.strategy.num_replicas_in_sync
            self._apply(tape, replica_share, self.T, self.opt_t)
            return {"T/cond": total}
        with tf.GradientTape() as tape:
            terms, total = self._au_losses(self.D(self._au_view(real, extras))[1], y_src, real, extras)
            replica_share = total / self.strategy.num_replicas_in_sync
        self._apply(tape, replica_share, self.D, self.opt_d)
        return dict(terms, **{"D/total": total})

    def _generator_replica(self, real, y_src, y_tgt):
        c = self.config
        with tf.GradientTape() as tape:
            fake, color_fake, att_fake = generate(self.G, real, y_tgt)
            rec, color_rec, att_rec = generate(self.G, fake, y_src)  # the cycle back to the source expression
            if c.au_blur:  # the realness head judges the output, the AU head reads its low-passed copy: one pass
                both = [tf.split(o, 2, axis=0) for o in self.D(tf.concat([fake, self._au_view(fake)], axis=0))]
                fake_outputs, fake_aus = [o[0] for o in both], both[1][1]
            else:
                fake_outputs = self.D(fake)
                fake_aus = fake_outputs[1]
            if self.T is not None:  # --au-teacher: the frozen teacher reads the output's AUs
                fake_aus = self.T(fake)[1]
            fake_realness = self._realness(fake_outputs, y_tgt)
            if c.gan_loss == "wgan-gp":
                adv = losses.generator_adversarial(fake_realness)
            else:
                adv = losses.generator_nonsaturating(fake_realness)
            cond = losses.expression_loss(fake_aus, y_tgt)
            cyc = losses.cycle_loss(rec, real)
            att = losses.attention_magnitude(att_fake) + losses.attention_magnitude(att_rec)
            tv = losses.attention_smoothness(att_fake) + losses.attention_smoothness(att_rec)
            total = adv + self.lambda_cond * cond + c.lambda_cyc * cyc + self.lambda_att * att + c.lambda_tv * tv
            terms = {"G/adv": adv, "G/cond": cond, "G/cyc": cyc, "G/att": att, "G/tv": tv}
            if c.lambda_idt:  # the identity mapping: asked for its own AUs, G must return the input
                idt, _, _ = generate(self.G, real, y_src)
                terms["G/idt"] = losses.cycle_loss(idt, real)
                total += c.lambda_idt * terms["G/idt"]
            if c.lambda_color_tv:
                terms["G/color_tv"] = (losses.color_smoothness(color_fake, att_fake)
                                       + losses.color_smoothness(color_rec, att_rec))
                total += c.lambda_color_tv * terms["G/color_tv"]
            if c.lambda_edit_l1:  # sparsity of the edit: soft-thresholds the AU loss's pull on each pixel
                terms["G/edit_l1"] = losses.edit_sparsity(fake, real)
                total += c.lambda_edit_l1 * terms["G/edit_l1"]
            replica_share = total / self.strategy.num_replicas_in_sync
        self._apply(tape, replica_share, self.G, self.opt_g)
        return dict(terms, **{"G/total": total})

    def _apply(self, tape, loss, model, optimizer):
        """Apply the gradients of this replica's share of the loss (the optimizer all-reduces them)."""
        grads = tape.gradient(loss, model.trainable_weights)
        # Weights the loss does not reach (the realness head in --au-head-start's steps) keep their values.
        optimizer.apply_gradients([(g, w) for g, w in zip(grads, model.trainable_weights) if g is not None])


class _Weights(tf.Module):
    """Makes a TensorLayer model's weights trackable (a TL Model is not a tf.Module)."""

    def __init__(self, model):
        super().__init__(name=None)
        self.weights = list(model.all_weights)
