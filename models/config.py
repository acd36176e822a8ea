"""What the networks are built from: their shapes and the precision they compute in (no TensorFlow here, so that
train.py checks its flags before the slow import).

    net = NetworkConfig(image_size=64, g_conv_dim=32)
    G, D = build_networks(net)                 # models/networks.py
    export_saved_model(G, D, out, dict(net.metadata(), step=0))

A training run holds one as `TrainConfig.net` (training/config.py: its flags are `--image-size` ... `--precision`,
and config.json keeps these keys at its top level). A resumed run keeps the SHAPE_FIELDS: its checkpoints hold
weights of those shapes.
"""
import dataclasses
from dataclasses import dataclass

from data.constants import CONDITIONINGS
from utils.cli import option

PRECISIONS = {"fp32": "float32", "bf16": "bfloat16"}  # --precision -> the networks' compute dtype


@dataclass
class NetworkConfig:
    image_size: int = option(128, "face crop size in pixels (multiple of 2^d_layers; the paper uses 128)")
    g_conv_dim: int = option(64, "generator width: channels of its first layer (paper: 64)")
    d_conv_dim: int = option(64, "discriminator width: channels of its first layer (paper: 64)")
    n_res: int = option(6, "residual blocks in the generator's bottleneck (paper: 6)")
    d_layers: int = option(6, "stride-2 conv layers in the discriminator (paper: 6)")
    d_projection: bool = option(False, "beyond the paper: a conditional critic (projection discriminator, Miyato & "
                                       "Koyama 2018): a third head h(x) of 17 values, and the realness becomes "
                                       "D_I(x) + <h(x), y> for the image's AUs y (real: its own, fake: the target), so "
                                       "the adversarially trained critic, not only the AU regressor, judges whether "
                                       "an output shows its AUs")
    g_color_residual: bool = option(False, "beyond the paper: the color mask is the input plus a change, "
                                           "clip(real + tanh(.), -1, 1), so that where the attention opens and "
                                           "nothing should change it need not repaint the input")
    g_norm_affine: bool = option(True, "generator instance norms with learnable gamma/beta (official GANimation; "
                                       "ganimation_replicate: off)")
    g_conv_bias: bool = option(False, "generator convs with biases (ganimation_replicate; official GANimation: off)")
    conditioning: str = option("tile", "how the generator sees the target AUs: tile (the paper: tiled over the image "
                                       "as 17 extra input channels) or adain (an embedding of the AUs drives adaptive "
                                       "instance norms in the residual and up-sampling blocks; the image goes in "
                                       "alone)")
    adain_dim: int = option(64, "with --conditioning adain: size of the AU embedding (two fully connected layers)")
    precision: str = option("fp32", "fp32; bf16: mixed precision (float32 weights and losses, bfloat16 convolutions) "
                                    "for CPUs with AVX-512 BF16 / AMX and recent GPUs (on a CPU without them bf16 is "
                                    "about 10x SLOWER); auto: bf16 where the hardware runs it natively, else fp32")

    def validate(self):
        """Raise ValueError with a one-line reason for networks that cannot be built. precision may still be
        "auto" here: training.config.resolve_precision picks fp32 or bf16 before anything is built."""
        checks = [
            (self.precision in PRECISIONS or self.precision == "auto",
             f"--precision must be one of {', '.join(PRECISIONS)}, auto"),
            (self.conditioning in CONDITIONINGS, f"--conditioning must be one of {', '.join(CONDITIONINGS)}"),
            (self.adain_dim >= 1, "--adain-dim must be >= 1"),
            (self.image_size % (2 ** self.d_layers) == 0,
             f"--image-size must be a multiple of 2^d_layers = {2 ** self.d_layers}"),
            (min(self.g_conv_dim, self.d_conv_dim) >= 1 and self.n_res >= 0, "network widths must be positive"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
        return self

    def compute_dtype(self):
        """The convolutions' dtype: float32 or bfloat16."""
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision {self.precision!r}: build with one of {', '.join(PRECISIONS)} "
                             "(training.config.resolve_precision picks one for auto)")
        return PRECISIONS[self.precision]

    def metadata(self):
        """What an export records about its networks (models/export.py adds the generator's conditioning and
        label size from the generator itself): every field, adain_dim for an AdaIN generator only."""
        meta = dataclasses.asdict(self)
        if self.conditioning != "adain":
            del meta["adain_dim"]
        return meta


# The fields that shape the networks' weights: a resumed run keeps them (its checkpoints hold weights of those shapes).
SHAPE_FIELDS = tuple(f.name for f in dataclasses.fields(NetworkConfig) if f.name != "precision")
