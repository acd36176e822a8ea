"""One configuration object for a training run; the command line of train.py is made from it.

Every run writes the resolved configuration to RUN_DIR/config.json, and `--resume RUN_DIR` reads it back.
"""
import argparse
import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from typing import Optional

from models.config import SHAPE_FIELDS, NetworkConfig
from utils.cli import option as _f  # a field with its --help text; cli=False: in config.json, but not a flag
from utils.errors import UserError


ADAM_VARIANTS = ("torch", "keras")  # --adam (training/optimizers.py)
GAN_LOSSES = ("wgan-gp", "nonsaturating")
AU_JACOBIAN_AT = ("real", "interpolates")  # --au-jacobian-at


@dataclass
class TrainConfig:
    # --- data ---
    data: Optional[str] = _f(None, "dataset: a folder (official layout imgs/ + aus + train_ids.csv, a folder with "
                                   "manifest.csv, or images with OpenFace CSVs) or a manifest CSV; "
                                   "default: the built-in synthetic faces")
    allow_pickle: bool = _f(False, "allow reading the official layout's aus_openface.pkl (plain dicts of numbers "
                                   "only, through a restricted unpickler)")
    strict: bool = _f(False, "stop when the data check finds any problem (default: skip bad samples)")
    min_confidence: Optional[float] = _f(None, "OpenFace folders: skip face rows with a lower detection confidence")
    synthetic_identities: int = _f(40, "built-in data: number of face identities")
    synthetic_per_identity: int = _f(50, "built-in data: expressions rendered per identity")
    flip: bool = _f(True, "augment with random horizontal flips")
    # --- networks (models/config.py: --image-size ... --precision, at config.json's top level) ---
    net: NetworkConfig = field(default_factory=NetworkConfig)
    precision_note: str = _f("", "set by --precision auto: what was picked on this machine and why", cli=False)
    # --- optimisation ---
    epochs: int = _f(30, "training epochs (paper: 30)")
    batch: int = _f(25, "batch size (paper: 25)")
    lr_g: float = _f(1e-4, "generator learning rate before the decay")
    lr_d: float = _f(1e-4, "critic learning rate before the decay")
    beta1: float = _f(0.5, "Adam beta1")
    beta2: float = _f(0.999, "Adam beta2")
    decay_epochs: int = _f(10, "decay the learning rates linearly over this many last epochs "
                               "(capped at --epochs; 30 epochs, 10 decay epochs: 1e-4 through epoch 21, 9e-5 at 22, ... "
                               "1e-5 at 30)")
    critic_steps: int = _f(5, "critic steps per generator step")
    adam: str = _f("torch", "Adam's update: torch (PyTorch's, the paper's optimizer: epsilon 1e-8 on the bias-corrected "
                            "sqrt(v)) or keras (Keras' own: epsilon 1e-7 on the uncorrected sqrt(v), about 10-300x "
                            "PyTorch's effective epsilon)")
    max_steps: int = _f(0, "stop after this many critic steps in all (the learning-rate schedule still follows "
                           "--epochs): evaluate, checkpoint and export as at the end; 0 = no limit")
    # --- beyond the paper: options for faster learning (all off by default) ---
    g_ema: float = _f(0.0, "keep an exponential moving average of the generator's weights with this decay (e.g. "
                           "0.999, as StyleGAN, StarGAN v2 and EDM): samples, evaluation and the export use the "
                           "average; 0 = off (the paper)")
    gan_loss: str = _f("wgan-gp", "adversarial objective: wgan-gp (the paper: Wasserstein loss with a gradient "
                                  "penalty) or nonsaturating (logistic loss with a lazy R1 penalty on real images, "
                                  "as StyleGAN2 / StarGAN v2; allows --critic-steps 1)")
    r1_gamma: float = _f(1.0, "with --gan-loss nonsaturating: the R1 penalty is gamma / 2 * mean ||grad D(real)||^2")
    r1_every: int = _f(4, "with --gan-loss nonsaturating: compute R1 every N critic steps, weighted by N (lazy "
                          "regularization, StyleGAN2)")
    lambda_au_jacobian: float = _f(0.0, "weight of a penalty on the AU head's input gradient at real images "
                                        "(squared Frobenius norm of its Jacobian, one random projection per "
                                        "sample), so that pixel noise cannot fool it; 0 = off (the paper)")
    au_jacobian_at: str = _f("real", "where --lambda-au-jacobian penalizes the AU head's input gradient: real "
                                     "(real images) or interpolates (the gradient penalty's points between real "
                                     "and generated images, where the generator's noise moves the head's reading)")
    au_noise: float = _f(0.0, "the AU head learns real AUs from real images with Gaussian pixel noise of a per-image "
                              "std drawn from U(0, X) ([-1, 1] pixel scale, e.g. 0.1), so that it learns to "
                              "ignore noise; the realness head still sees clean images; 0 = off (the paper)")
    au_blur: float = _f(0.0, "the AU head reads images low-passed by a Gaussian of this std in pixels (e.g. 1): real "
                             "images when it learns their AUs, the generator's outputs in the generator's AU loss, so "
                             "that colour noise finer than the blur cannot fool it; the realness head still sees the "
                             "images themselves; one more critic pass over the batch in each step; 0 = off (the paper)")
    au_adversarial: float = _f(0.0, "adversarial training of the AU head: it also learns the real AUs of real images "
                                    "moved within an L2 ball of this radius per image ([-1, 1] pixel scale, e.g. 1) "
                                    "to where its reading is most wrong, so that changes smaller than that cannot "
                                    "move its reading; one more critic pass per perturbation step; 0 = off (the paper)")
    au_adversarial_steps: int = _f(1, "with --au-adversarial: projected gradient steps that find the perturbation")
    au_head_start: int = _f(0, "the first N critic steps train only the critic's AU regression on real images "
                               "(no generator, no adversarial loss), so that the generator never trains against "
                               "a random AU head; the warm-ups start after it; 0 = off (the paper)")
    au_teacher: bool = _f(False, "with --au-head-start N: the head start trains a separate AU regressor of the critic's "
                                 "architecture (adversarially with --au-adversarial), which is then frozen, and the "
                                 "generator's AU loss reads it instead of the critic's AU head (which trains as in "
                                 "the paper); off = the paper")
    lambda_idt: float = _f(0.0, "weight of an identity loss mean |G(real, y_src) - real| (CycleGAN's identity mapping): "
                                "asked for its own AUs the generator must return its input, a direct pixel "
                                "signal for the color mask; one more generator pass per step; 0 = off (the paper)")
    lambda_color_tv: float = _f(0.0, "weight of the color mask's total variation where the output uses it "
                                     "((1 - A) weighted, mean over pixels): smooths colour noise; 0 = off")
    lambda_edit_l1: float = _f(0.0, "weight of an L1 sparsity term on the edit, mean |G(real, y_tgt) - real| (a "
                                    "soft threshold: the AU loss's weak pull spread over the face no longer moves "
                                    "pixels, its strong local pull still does); 0 = off (the paper)")
    # --- loss weights (one visible weighted sum in training/steps.py) ---
    lambda_gp: float = _f(10.0, "weight of the gradient penalty")
    lambda_cond: float = _f(160.0, "weight of the AU (expression) loss on the per-element MSE; the official "
                                   "4000 / batch 25 = 160")
    cond_warmup_steps: int = _f(0, "AU-weight warm-up: over the first N critic steps the AU loss weight (generator "
                                   "and critic) falls linearly from --lambda-cond-start to --lambda-cond: a strong "
                                   "AU loss breaks the copy-the-input start, the paper's weight then lets the "
                                   "critic clean the edits (0 = off, the paper)")
    lambda_cond_start: float = _f(800.0, "the AU loss weight at step 0 of the warm-up (--cond-warmup-steps)")
    lambda_cyc: float = _f(10.0, "weight of the cycle (identity) L1 loss")
    lambda_att: float = _f(0.1, "weight of the attention magnitude loss mean(A)")
    att_warmup_steps: int = _f(0, "attention warm-up: over the first N critic steps the weight of mean(A) falls "
                                  "linearly from --lambda-att-start to --lambda-att, so that the color mask learns "
                                  "the face before the attention saturates to copying (0 = off, the paper)")
    lambda_att_start: float = _f(10.0, "the attention weight at step 0 of the warm-up (--att-warmup-steps)")
    lambda_tv: float = _f(1e-5, "weight of the attention total-variation loss (a sum over pixels)")
    target_noise: float = _f(0.1, "uniform noise added to the target AUs on the [0, 1] scale")
    # --- devices ---
    strategy: str = _f("default", "default (one device), mirrored (all local GPUs, or --cpu-devices logical CPUs) "
                                  "or multiworker (machines listed in TF_CONFIG; same --run-name on every worker)")
    cpu_devices: int = _f(0, "with --strategy mirrored and no GPU: split the CPU into this many logical devices")
    # --- run bookkeeping ---
    seed: int = _f(0, "random seed (data order, flips, targets, initial weights)")
    runs_dir: str = _f("runs", "where new run directories are made")
    run_name: Optional[str] = _f(None, "run directory name (default: date-time)")
    max_minutes: float = _f(0.0, "time budget: after this many minutes of training in this session, evaluate, save a "
                                 "checkpoint and export as at the end (0 = no limit; --resume continues the run)")
    checkpoint_every: int = _f(500, "save a checkpoint every N critic steps (and at every epoch's end)")
    checkpoint_minutes: float = _f(10.0, "also save a checkpoint when this many minutes passed since the last")
    keep_checkpoints: int = _f(3, "checkpoints kept")
    log_every: int = _f(10, "write loss scalars every N critic steps")
    sample_every: int = _f(500, "write an image grid (TensorBoard and samples/*.png) every N critic steps")
    eval_every: int = _f(1000, "on the built-in faces: score edits against the true renders of --eval-identities "
                               "held-out identities every N critic steps (TensorBoard eval/*, metrics.jsonl); 0 = never")
    eval_identities: int = _f(2, "held-out identities of the in-training evaluation (evaluate.py uses 8)")
    export: bool = _f(True, "export a SavedModel to RUN_DIR/export at the end of training")
    tflite: bool = _f(False, "with the export, also write TFLite models of its edit signature, one face per call: "
                             "RUN_DIR/export/edit_fp32.tflite and edit_fp16.tflite (float16 weights, half the size); "
                             "models/tflite.py")

    def validate(self):
        """Raise ValueError with a one-line reason for settings that cannot work."""
        self.net.validate()
        checks = [
            (self.epochs >= 1, "--epochs must be >= 1"),
            (self.batch >= 1, "--batch must be >= 1"),
            (self.decay_epochs >= 0, "--decay-epochs must be >= 0"),
            (self.eval_every >= 0 and self.eval_identities >= 1,
             "--eval-every must be >= 0 and --eval-identities >= 1"),
            (self.critic_steps >= 1, "--critic-steps must be >= 1"),
            (self.adam in ADAM_VARIANTS, f"--adam must be one of {', '.join(ADAM_VARIANTS)}"),
            (self.gan_loss in GAN_LOSSES, f"--gan-loss must be one of {', '.join(GAN_LOSSES)}"),
            (self.au_jacobian_at in AU_JACOBIAN_AT, f"--au-jacobian-at must be one of {', '.join(AU_JACOBIAN_AT)}"),
            (0.0 <= self.g_ema < 1.0, "--g-ema must be in [0, 1)"),
            (self.r1_gamma >= 0 and self.r1_every >= 1, "--r1-gamma must be >= 0 and --r1-every >= 1"),
            (min(self.lambda_au_jacobian, self.au_noise, self.au_blur, self.lambda_color_tv, self.lambda_idt,
                 self.lambda_edit_l1) >= 0, "--lambda-au-jacobian, --au-noise, --au-blur, --lambda-idt, "
                                            "--lambda-color-tv and --lambda-edit-l1 must be >= 0"),
            (self.au_adversarial >= 0 and self.au_adversarial_steps >= 1,
             "--au-adversarial must be >= 0 and --au-adversarial-steps >= 1"),
            (not self.au_teacher or self.au_head_start >= 1, "--au-teacher needs --au-head-start N >= 1"),
            (not self.au_teacher or not self.au_blur, "--au-teacher cannot be combined with --au-blur"),
            (not self.au_adversarial or not (self.au_noise or self.au_blur),
             "--au-adversarial cannot be combined with --au-noise or --au-blur"),
            (self.au_head_start >= 0 and self.max_steps >= 0, "--au-head-start and --max-steps must be >= 0"),
            (self.att_warmup_steps >= 0, "--att-warmup-steps must be >= 0"),
            (self.cond_warmup_steps >= 0, "--cond-warmup-steps must be >= 0"),
            (self.lambda_cond >= 0 and self.lambda_cond_start >= 0,
             "--lambda-cond and --lambda-cond-start must be >= 0"),
            (self.max_minutes >= 0, "--max-minutes must be >= 0"),
            (self.max_minutes == 0 or self.strategy != "multiworker",
             "--max-minutes cannot be used with --strategy multiworker (workers would stop at different steps)"),
            (self.synthetic_identities >= 1 and self.synthetic_per_identity >= 1, "synthetic sizes must be >= 1"),
            (self.checkpoint_every >= 1 and self.log_every >= 1 and self.sample_every >= 1,
             "--checkpoint-every, --log-every and --sample-every must be >= 1"),
        ]
        not_finite = [f.name for f in dataclasses.fields(self)
                      if isinstance(getattr(self, f.name), float) and not math.isfinite(getattr(self, f.name))]
        if not_finite:  # NaN passes every comparison-free check above, and inf is no weight or rate
            raise ValueError(f"--{not_finite[0].replace('_', '-')} must be a finite number")
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
        return self

    def to_dict(self):
        """One flat level of keys, the networks' among them: config.json as every run has written it."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "net"}
        return dict(values, **dataclasses.asdict(self.net))

    def to_json(self):
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, values):
        """The config of flat keys (to_dict, config.json); keys it lacks (runs written before an option existed)
        take their defaults."""
        nets = {f.name for f in dataclasses.fields(NetworkConfig)}
        unknown = set(values) - nets - {f.name for f in dataclasses.fields(cls) if f.name != "net"}
        if unknown:
            raise ValueError(f"unknown configuration keys: {', '.join(sorted(unknown))}")
        net = NetworkConfig(**{k: v for k, v in values.items() if k in nets})
        return cls(net=net, **{k: v for k, v in values.items() if k not in nets})


def add_config_arguments(parser):
    """One flag per TrainConfig field (--image-size for image_size, --no-flip for booleans that default on).

    Defaults are argparse.SUPPRESS so that the parsed namespace holds only what the user typed: that lets
    --resume apply just the flags given on top of the run's saved configuration.
    """
    for f in _flag_fields():
        flag = "--" + f.name.replace("_", "-")
        help_text = f"{f.metadata['help']} (default: {f.default})"
        if f.type is bool:
            parser.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS,
                                help=help_text)
        else:
            kind = f.type if f.type in (int, float) else str  # Optional[str] fields take strings
            metavar = {int: "N", float: "X"}.get(kind, "PATH" if f.name in ("data", "runs_dir") else "NAME")
            parser.add_argument(flag, dest=f.name, type=kind, default=argparse.SUPPRESS, metavar=metavar,
                                help=help_text)
    return parser


def _flag_fields():
    """The fields that are flags, in TrainConfig's order with the networks' (NetworkConfig) in the place of `net`."""
    for f in dataclasses.fields(TrainConfig):
        if f.name == "net":
            yield from dataclasses.fields(NetworkConfig)
        elif f.metadata.get("cli", True):
            yield f


def config_from_args(namespace, base=None, resolve=True):
    """TrainConfig from a parsed namespace, on top of `base` (a saved config) when resuming. resolve=False leaves
    --precision auto for `resolve_precision` (which imports TensorFlow) to pick later."""
    given = {f.name: getattr(namespace, f.name) for f in _flag_fields() if hasattr(namespace, f.name)}
    for name in SHAPE_FIELDS:
        if base is not None and name in given and given[name] != getattr(base.net, name):
            flag = "--" + name.replace("_", "-")
            raise ValueError(f"{flag} cannot change when resuming: the run's networks were built with "
                             f"{flag} {getattr(base.net, name)}")
    values = base.to_dict() if base is not None else {}
    if values.get("precision_note") and "precision" not in given:  # picked by auto: pick again on this machine
        values["precision"] = "auto"
    values.update(given)
    config = TrainConfig.from_dict(values).validate()
    return resolve_precision(config) if resolve else config


def native_bf16():
    """(True/False, why): whether this machine runs bfloat16 convolutions natively (a GPU of compute capability
    8 or more, or a CPU with AVX-512 BF16 or AMX). TensorFlow runs bf16 elsewhere too, but emulated: about 10x
    slower than fp32 on an AVX2-only CPU (measured on AMD Zen 3)."""
    if os.path.exists("/dev/nvidia0") or os.path.isdir("/proc/driver/nvidia/gpus"):  # else no TensorFlow import
        from utils.cli import quiet_tensorflow
        tf = quiet_tensorflow(init_runtime=False)
        for gpu in tf.config.list_physical_devices("GPU"):  # (untested here: these machines have no GPU)
            major, minor = tf.config.experimental.get_device_details(gpu).get("compute_capability", (0, 0))
            if (major, minor) >= (8, 0):
                return True, f"GPU with compute capability {major}.{minor}"
            return False, f"GPU with compute capability {major}.{minor} (bf16 needs 8.0)"
    flags = set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        return False, "CPU flags unknown (no /proc/cpuinfo)"
    found = sorted(flags & {"avx512_bf16", "amx_bf16"})
    if found:
        return True, f"CPU has {' and '.join(found)}"
    return False, "CPU has no avx512_bf16 or amx_bf16 (bf16 would be emulated, about 10x slower)"


def resolve_precision(config):
    """A config with --precision auto resolved to fp32 or bf16 for this machine (precision_note says why)."""
    if config.net.precision != "auto":
        return config
    native, why = native_bf16()
    picked = "bf16" if native else "fp32"
    return dataclasses.replace(config, net=dataclasses.replace(config.net, precision=picked),
                               precision_note=f"auto picked {picked}: {why}")


def read_run_config(run_dir):
    """The TrainConfig saved in a run directory (a UserError when it is not one)."""
    path = os.path.join(run_dir, "config.json")
    if not os.path.isdir(run_dir):
        raise UserError(run_dir, "does not exist")
    if not os.path.isfile(path):
        raise UserError(run_dir, "not a run directory (no config.json)")
    try:
        with open(path) as f:
            return TrainConfig.from_dict(json.load(f))
    except (ValueError, TypeError) as e:
        raise UserError(path, f"unreadable run configuration ({e})") from None


def load_training_data(config):
    """The training data named by the config: a data set path (read and checked: data.dataset.load_dataset prints
    a summary), or the built-in synthetic faces. Needs no TensorFlow, so bad data is reported at once."""
    if config.data:
        from data.dataset import load_dataset
        faces = load_dataset(config.data, split="train", allow_pickle=config.allow_pickle,
                             image_size=config.net.image_size, strict=config.strict,
                             min_confidence=config.min_confidence)
    else:
        from data.synthetic import make_synthetic_faces
        faces = make_synthetic_faces(config.synthetic_identities, config.synthetic_per_identity,
                                      size=config.net.image_size, seed=config.seed)
    if len(faces) < config.batch:
        raise UserError(config.data or "synthetic data", f"{len(faces)} usable samples, fewer than one batch "
                                                        f"of {config.batch} (lower --batch)")
    return faces
