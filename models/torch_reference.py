"""PyTorch definitions of the two upstream GANimation architectures, written from the specification (docs/method.md).

Module names reproduce the upstream state-dict keys (docs/pytorch-import.md), so
`model.state_dict()` has the same keys and shapes as the released `.pth` files:

    official GANimation (Pumarola et al.)   OfficialGenerator / OfficialDiscriminator
        G: main.N.*  (trunk; convs without bias, affine instance norms), img_reg.0.weight, attetion_reg.0.weight
        D: main.{0,2,..,10}.weight/.bias, conv1.weight (realness), conv2.weight (AUs)
    ganimation_replicate (donydchen)        ReplicateGenerator / ReplicateDiscriminator
        G: model.N.* (trunk; convs with bias, instance norms without parameters), color_top.0.weight,
           au_top.0.weight (the attention head)
        D: model.{0,2,..,10}.weight/.bias, dis_top.weight (realness), aus_top.weight (AUs)

Used by models/convert_torch.py's tests (numerical parity with the TensorFlow networks) and by benchmarks.
Needs torch (requirements-torch.txt); nothing else in the project imports this module.

Conventions shared with the TensorFlow side (models/ops.py):
  - G input: images (B, 3, H, W) in [-1, 1] and AUs (B, c_dim) in [0, 1]; the AUs are tiled over H x W and
    concatenated after the image channels (3 + c_dim channels in).
  - G returns (color (B, 3, H, W) tanh, attention (B, 1, H, W) sigmoid); `compose` gives A * img + (1 - A) * C.
  - D returns (realness (B, 1, h, w), aus (B, c_dim)); nothing is squeezed, so batch 1 keeps its batch axis.
"""
import torch
from torch import nn

NUM_AUS = 17


def tile_aus(images, aus):
    """(B, C, H, W), (B, K) -> (B, C + K, H, W): channel C + k holds aus[:, k] everywhere."""
    b, _, h, w = images.shape
    maps = aus.to(images.dtype).view(b, -1, 1, 1).expand(b, aus.shape[1], h, w)
    return torch.cat([images, maps], dim=1)


def compose(attention, images, color):
    """GANimation's Eq. 1 as the official code computes it: A * I_src + (1 - A) * C."""
    return attention * images + (1.0 - attention) * color


class _Generator(nn.Module):
    """The generator shared by both variants; subclasses choose the attribute names and the variant switches.

    Trunk (one nn.Sequential, every conv / norm / ReLU counted in the indices):
      0-2 stem: Conv 7x7 s1 p3 (3 + c_dim -> conv_dim), IN, ReLU
      3-8 two downsamplings: Conv 4x4 s2 p1 (x2 channels), IN, ReLU
      9 .. 9 + repeat_num - 1: residual blocks at 4 * conv_dim channels
      then two upsamplings: ConvTranspose 4x4 s2 p1 (/2 channels), IN, ReLU
    Heads: Conv 7x7 p3 -> 3 + tanh (color), Conv 7x7 p3 -> 1 + sigmoid (attention), both without bias.
    """

    trunk_name = color_name = attention_name = block_name = None
    norm_affine = conv_bias = None

    def __init__(self, image_size=128, conv_dim=64, repeat_num=6, c_dim=NUM_AUS):
        super().__init__()
        if image_size % 4:
            raise ValueError(f"generator image_size must be a multiple of 4, got {image_size}")
        self.image_size, self.conv_dim, self.repeat_num, self.c_dim = image_size, conv_dim, repeat_num, c_dim
        bias, affine = self.conv_bias, self.norm_affine

        def norm(dim):
            return nn.InstanceNorm2d(dim, affine=affine, track_running_stats=False)

        layers = [nn.Conv2d(3 + c_dim, conv_dim, 7, 1, 3, bias=bias), norm(conv_dim), nn.ReLU(inplace=True)]
        dim = conv_dim
        for _ in range(2):
            layers += [nn.Conv2d(dim, dim * 2, 4, 2, 1, bias=bias), norm(dim * 2), nn.ReLU(inplace=True)]
            dim *= 2
        for _ in range(repeat_num):
            layers.append(_ResidualBlock(dim, self.block_name, bias, affine))
        for _ in range(2):
            layers += [nn.ConvTranspose2d(dim, dim // 2, 4, 2, 1, bias=bias), norm(dim // 2), nn.ReLU(inplace=True)]
            dim //= 2
        setattr(self, self.trunk_name, nn.Sequential(*layers))
        setattr(self, self.color_name, nn.Sequential(nn.Conv2d(dim, 3, 7, 1, 3, bias=False), nn.Tanh()))
        setattr(self, self.attention_name, nn.Sequential(nn.Conv2d(dim, 1, 7, 1, 3, bias=False), nn.Sigmoid()))

    def forward(self, images, aus):
        """images (B, 3, H, W) in [-1, 1], aus (B, c_dim) in [0, 1] -> (color, attention)."""
        features = getattr(self, self.trunk_name)(tile_aus(images, aus))
        return getattr(self, self.color_name)(features), getattr(self, self.attention_name)(features)


class _ResidualBlock(nn.Module):
    """Conv3x3-IN-ReLU-Conv3x3-IN plus the identity, no ReLU after the add; the Sequential is `block_name`."""

    def __init__(self, dim, block_name, bias, affine):
        super().__init__()
        self.block_name = block_name
        setattr(self, block_name, nn.Sequential(
            nn.Conv2d(dim, dim, 3, 1, 1, bias=bias), nn.InstanceNorm2d(dim, affine=affine, track_running_stats=False),
            nn.ReLU(inplace=True),
            nn.Conv2d(dim, dim, 3, 1, 1, bias=bias), nn.InstanceNorm2d(dim, affine=affine, track_running_stats=False)))

    def forward(self, x):
        return x + getattr(self, self.block_name)(x)


class _Discriminator(nn.Module):
    """The critic shared by both variants: repeat_num x (Conv 4x4 s2 p1 with bias, LeakyReLU(0.01)),
    3 -> conv_dim -> ... doubling; a 3x3 p1 realness head and an AU head whose kernel covers the last map,
    both without bias."""

    trunk_name = critic_name = aus_name = None

    def __init__(self, image_size=128, conv_dim=64, repeat_num=6, c_dim=NUM_AUS):
        super().__init__()
        if image_size % (2 ** repeat_num):
            raise ValueError(f"discriminator image_size must be a multiple of {2 ** repeat_num}, got {image_size}")
        self.image_size, self.conv_dim, self.repeat_num, self.c_dim = image_size, conv_dim, repeat_num, c_dim
        layers, in_dim, dim = [], 3, conv_dim
        for _ in range(repeat_num):
            layers += [nn.Conv2d(in_dim, dim, 4, 2, 1), nn.LeakyReLU(0.01, inplace=True)]
            in_dim, dim = dim, dim * 2
        k = image_size // 2 ** repeat_num
        setattr(self, self.trunk_name, nn.Sequential(*layers))
        setattr(self, self.critic_name, nn.Conv2d(in_dim, 1, 3, 1, 1, bias=False))
        setattr(self, self.aus_name, nn.Conv2d(in_dim, c_dim, k, bias=False))

    def forward(self, images):
        """images (B, 3, H, W) in [-1, 1] -> (realness (B, 1, h, w), aus (B, c_dim))."""
        h = getattr(self, self.trunk_name)(images)
        realness = getattr(self, self.critic_name)(h)
        aus = getattr(self, self.aus_name)(h)
        return realness, aus.reshape(aus.shape[0], self.c_dim)


class OfficialGenerator(_Generator):
    """Official GANimation generator: convs without bias, InstanceNorm2d(affine=True).
    Keys: main.N.weight (convs and norm gammas), main.N.bias (norm betas), main.{9+k}.main.{0,1,3,4}.*,
    img_reg.0.weight, attetion_reg.0.weight (sic)."""
    trunk_name, color_name, attention_name, block_name = "main", "img_reg", "attetion_reg", "main"
    norm_affine, conv_bias = True, False


class ReplicateGenerator(_Generator):
    """ganimation_replicate generator: convs with bias, InstanceNorm2d(affine=False) (no parameters).
    Keys: model.N.weight/.bias (convs), model.{9+k}.conv_block.{0,3}.weight/.bias, color_top.0.weight,
    au_top.0.weight (the attention head)."""
    trunk_name, color_name, attention_name, block_name = "model", "color_top", "au_top", "conv_block"
    norm_affine, conv_bias = False, True


class OfficialDiscriminator(_Discriminator):
    """Official GANimation critic. Keys: main.{0,2,..}.weight/.bias, conv1.weight, conv2.weight."""
    trunk_name, critic_name, aus_name = "main", "conv1", "conv2"


class ReplicateDiscriminator(_Discriminator):
    """ganimation_replicate critic. Keys: model.{0,2,..}.weight/.bias, dis_top.weight, aus_top.weight."""
    trunk_name, critic_name, aus_name = "model", "dis_top", "aus_top"


ARCHITECTURES = {
    "official": (OfficialGenerator, OfficialDiscriminator),
    "replicate": (ReplicateGenerator, ReplicateDiscriminator),
}


def build(variant, image_size=128, g_conv_dim=64, d_conv_dim=64, repeat_num=6, d_repeat_num=6, c_dim=NUM_AUS):
    """(G, D) of one variant ("official" or "replicate"), in eval mode."""
    gen, dis = ARCHITECTURES[variant]
    return (gen(image_size, g_conv_dim, repeat_num, c_dim).eval(),
            dis(image_size, d_conv_dim, d_repeat_num, c_dim).eval())
