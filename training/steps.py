"""GANimation's two training steps, each one `tf.function` taking a batch and returning named scalars.

    steps = GANimationSteps(G, D, config)
    y_tgt = steps.sample_targets(y_src)                 # other samples' AUs + U(-0.1, 0.1) noise
    d_metrics = steps.critic_step(real, y_src, y_tgt)   # {"D/adv", "D/gp", "D/cond", "D/total"}
    g_metrics = steps.generator_step(real, y_src, y_tgt)  # {"G/adv", "G/cond", "G/cyc", "G/att", "G/tv", "G/total"}

The 5:1 schedule of critic to generator steps lives in plain Python (training/loop.py).
real: (B, S, S, 3) in [-1, 1]; y_src, y_tgt: (B, 17) on the [0, 1] scale. B and S are fixed per instance so
the steps trace once.
"""
import tensorflow as tf

import losses
from data.constants import NUM_AUS
from models.ops import compose


def generate(G, images, aus):
    """Run the generator and compose its output. Returns (output, color, attention)."""
    color, attention = G([images, aus])
    return compose(attention, images, color), color, attention


def make_optimizer(lr, beta1, beta2):
    return tf.keras.optimizers.Adam(learning_rate=lr, beta_1=beta1, beta_2=beta2)


class GANimationSteps:
    """Holds the networks, their optimizers and the random generator the steps draw from.

    Everything a resumed run needs is reachable from `checkpoint_objects()`.
    """

    def __init__(self, G, D, config, batch_size=None, num_aus=NUM_AUS):
        self.G, self.D, self.config = G, D, config
        self.G.train()
        self.D.train()
        self.opt_g = make_optimizer(config.lr_g, config.beta1, config.beta2)
        self.opt_d = make_optimizer(config.lr_d, config.beta1, config.beta2)
        # Build the optimizer slots now, so a checkpoint restores into them before the first step.
        self.opt_g.build(self.G.trainable_weights)
        self.opt_d.build(self.D.trainable_weights)
        self.rng = tf.random.Generator.from_seed(config.seed)
        b, s = batch_size or config.batch, config.image_size
        spec = [tf.TensorSpec([b, s, s, 3], tf.float32), tf.TensorSpec([b, num_aus], tf.float32),
                tf.TensorSpec([b, num_aus], tf.float32)]
        self.critic_step = tf.function(self._critic_step, input_signature=spec)
        self.generator_step = tf.function(self._generator_step, input_signature=spec)

    def checkpoint_objects(self):
        """The trackable state of training: weights, optimizer moments and step counts, RNG state."""
        return dict(G=_Weights(self.G), D=_Weights(self.D), opt_g=self.opt_g, opt_d=self.opt_d, rng=self.rng)

    def set_learning_rates(self, lr_g, lr_d):
        self.opt_g.learning_rate.assign(lr_g)
        self.opt_d.learning_rate.assign(lr_d)

    def sample_targets(self, y_src):
        """Target AUs: the AUs of other samples of the batch (a fresh permutation across samples), plus
        uniform noise in [-target_noise, target_noise]. y_src: (B, 17) on the [0, 1] scale."""
        permutation = tf.argsort(self.rng.uniform([tf.shape(y_src)[0]]))
        noise = self.rng.uniform(tf.shape(y_src), -self.config.target_noise, self.config.target_noise)
        return tf.gather(y_src, permutation) + noise

    def _critic_step(self, real, y_src, y_tgt):
        c = self.config
        fake, _, _ = generate(self.G, real, y_tgt)
        fake = tf.stop_gradient(fake)
        alpha = self.rng.uniform([tf.shape(real)[0], 1, 1, 1])  # U(0, 1) per sample
        with tf.GradientTape() as tape:
            realness, aus = self.D(tf.concat([real, fake], axis=0))  # one pass over real and fake
            real_realness, fake_realness = tf.split(realness, 2, axis=0)
            real_aus, _ = tf.split(aus, 2, axis=0)
            adv = losses.critic_adversarial(real_realness, fake_realness)
            gp = losses.gradient_penalty(lambda x: self.D(x)[0], real, fake, alpha)
            cond = losses.expression_loss(real_aus, y_src)
            total = adv + c.lambda_gp * gp + c.lambda_cond * cond
        grads = tape.gradient(total, self.D.trainable_weights)
        self.opt_d.apply_gradients(zip(grads, self.D.trainable_weights))
        return {"D/adv": adv, "D/gp": gp, "D/cond": cond, "D/total": total}

    def _generator_step(self, real, y_src, y_tgt):
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
            total = adv + c.lambda_cond * cond + c.lambda_cyc * cyc + c.lambda_att * att + c.lambda_tv * tv
        grads = tape.gradient(total, self.G.trainable_weights)
        self.opt_g.apply_gradients(zip(grads, self.G.trainable_weights))
        return {"G/adv": adv, "G/cond": cond, "G/cyc": cyc, "G/att": att, "G/tv": tv, "G/total": total}


class _Weights(tf.Module):
    """Makes a TensorLayer model's weights trackable (a TL Model is not a tf.Module)."""

    def __init__(self, model):
        super().__init__(name=None)
        self.weights = list(model.all_weights)
