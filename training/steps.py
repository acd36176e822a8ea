"""GANimation's two training steps, each one `tf.function` taking a batch and returning named scalars.

    steps = GANimationSteps(G, D, config)               # build G, D (and this) inside strategy.scope()
    y_tgt, alpha = steps.sample_targets(y_src), steps.sample_alpha(len(y_src))
    batch = steps.distribute(real, y_src, y_tgt, alpha)  # split over the replicas (a no-op on one device)
    d_metrics = steps.critic_step(*batch)     # {"D/adv", "D/gp", "D/cond", "D/total"}
    g_metrics = steps.generator_step(*batch)  # {"G/adv", "G/cond", "G/cyc", "G/att", "G/tv", "G/total"}

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


def generate(G, images, aus):
    """Run the generator and compose its output. Returns (output, color, attention)."""
    color, attention = G([images, aus])
    return compose(attention, images, color), color, attention


def make_optimizer(lr, beta1, beta2):
    return tf.keras.optimizers.Adam(learning_rate=lr, beta_1=beta1, beta_2=beta2)


class GANimationSteps:
    """Holds the networks, their optimizers and the random generator the batches draw from.

    Create it inside `strategy.scope()` (with the networks) when a strategy is used, with an `rng` made outside.
    Everything a resumed run needs is reachable from `checkpoint_objects()`.
    """

    def __init__(self, G, D, config, strategy=None, rng=None):
        self.G, self.D, self.config = G, D, config
        self.strategy = strategy or tf.distribute.get_strategy()
        self.G.train()
        self.D.train()
        self.opt_g = make_optimizer(config.lr_g, config.beta1, config.beta2)
        self.opt_d = make_optimizer(config.lr_d, config.beta1, config.beta2)
        # Build the optimizer slots now, so a checkpoint restores into them before the first step.
        self.opt_g.build(self.G.trainable_weights)
        self.opt_d.build(self.D.trainable_weights)
        # One plain generator for the eager code that draws targets and alphas: under a strategy, create it
        # outside strategy.scope() and pass it in (a generator made in the scope is split per replica).
        self.rng = rng if rng is not None else tf.random.Generator.from_seed(config.seed)
        # The attention and AU weights can follow warm-up schedules (training/schedule.py): variables, so that
        # the steps trace once.
        self.lambda_att = tf.Variable(float(config.lambda_att), trainable=False, name="lambda_att")
        self.lambda_cond = tf.Variable(float(config.lambda_cond), trainable=False, name="lambda_cond")
        self.critic_step = tf.function(self._critic_step)
        self.generator_step = tf.function(self._generator_step)

    def checkpoint_objects(self):
        """The trackable state of training: weights, optimizer moments and step counts, RNG state."""
        return dict(G=_Weights(self.G), D=_Weights(self.D), opt_g=self.opt_g, opt_d=self.opt_d, rng=self.rng)

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
        uniform noise in [-target_noise, target_noise]. y_src: (B, 17) on the [0, 1] scale."""
        permutation = tf.argsort(self.rng.uniform([tf.shape(y_src)[0]]))
        noise = self.rng.uniform(tf.shape(y_src), -self.config.target_noise, self.config.target_noise)
        return tf.gather(y_src, permutation) + noise

    def sample_alpha(self, batch_size):
        """The gradient penalty's interpolation weights, U(0, 1) per sample: (B, 1, 1, 1)."""
        return self.rng.uniform([batch_size, 1, 1, 1])

    def distribute(self, *tensors):
        """Split this worker's batch over its local replicas (returned unchanged on a single device)."""
        if self.strategy.num_replicas_in_sync == 1:
            return tensors
        local = len(self.strategy.extended.worker_devices)
        per_replica = int(tensors[0].shape[0]) // local

        def share(context, t):  # replica ids are global; each worker holds its own local batch
            i = context.replica_id_in_sync_group % local
            return t[i * per_replica:(i + 1) * per_replica]

        return tuple(self.strategy.experimental_distribute_values_from_function(functools.partial(share, t=t))
                     for t in tensors)

    def _critic_step(self, real, y_src, y_tgt, alpha):
        return self._reduce(self.strategy.run(self._critic_replica, args=(real, y_src, y_tgt, alpha)))

    def _generator_step(self, real, y_src, y_tgt, alpha):
        return self._reduce(self.strategy.run(self._generator_replica, args=(real, y_src, y_tgt)))

    def _reduce(self, per_replica):
        return {k: self.strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None) for k, v in per_replica.items()}

    def _critic_replica(self, real, y_src, y_tgt, alpha):
        c = self.config
        fake, _, _ = generate(self.G, real, y_tgt)
        fake = tf.stop_gradient(fake)
        with tf.GradientTape() as tape:
            realness, aus = self.D(tf.concat([real, fake], axis=0))  # one pass over real and fake
            real_realness, fake_realness = tf.split(realness, 2, axis=0)
            real_aus, _ = tf.split(aus, 2, axis=0)
            adv = losses.critic_adversarial(real_realness, fake_realness)
            gp = losses.gradient_penalty(lambda x: self.D(x)[0], real, fake, alpha)
            cond = losses.expression_loss(real_aus, y_src)
            total = adv + c.lambda_gp * gp + self.lambda_cond * cond
            replica_share = total / self.strategy.num_replicas_in_sync  # the optimizer sums over replicas
        self._apply(tape, replica_share, self.D, self.opt_d)
        return {"D/adv": adv, "D/gp": gp, "D/cond": cond, "D/total": total}

    def _generator_replica(self, real, y_src, y_tgt):
        c = self.config
        with tf.GradientTape() as tape:
            fake, _, att_fake = generate(self.G, real, y_tgt)
            rec, _, att_rec = generate(self.G, fake, y_src)  # the cycle back to the source expression
            fake_realness, fake_aus = self.D(fake)
            adv = losses.generator_adversarial(fake_realness)
            cond = losses.expression_loss(fake_aus, y_tgt)
            cyc = losses.cycle_loss(rec, real)
            att = losses.attention_magnitude(att_fake) + losses.attention_magnitude(att_rec)
            tv = losses.attention_smoothness(att_fake) + losses.attention_smoothness(att_rec)
            total = adv + self.lambda_cond * cond + c.lambda_cyc * cyc + self.lambda_att * att + c.lambda_tv * tv
            replica_share = total / self.strategy.num_replicas_in_sync
        self._apply(tape, replica_share, self.G, self.opt_g)
        return {"G/adv": adv, "G/cond": cond, "G/cyc": cyc, "G/att": att, "G/tv": tv, "G/total": total}

    def _apply(self, tape, loss, model, optimizer):
        """Apply the gradients of this replica's share of the loss (the optimizer all-reduces them)."""
        grads = tape.gradient(loss, model.trainable_weights)
        optimizer.apply_gradients(zip(grads, model.trainable_weights))


class _Weights(tf.Module):
    """Makes a TensorLayer model's weights trackable (a TL Model is not a tf.Module)."""

    def __init__(self, model):
        super().__init__(name=None)
        self.weights = list(model.all_weights)
