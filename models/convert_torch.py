"""Import the PyTorch checkpoints of the official GANimation or of ganimation_replicate into a run directory.

  python -m models.convert_torch --gen G.pth [--dis D.pth] --variant official|replicate --out RUN_DIR

Writes RUN_DIR/config.json, RUN_DIR/checkpoints/ (what `python train.py --resume RUN_DIR` continues from) and
RUN_DIR/export/ (the SavedModel that `python infer.py --model RUN_DIR` takes). Widths and depths (conv_dim,
residual blocks, discriminator layers) are read from the checkpoint; the image size from the discriminator's
AU head (or --image-size, default 128, when only a generator is given).

State dicts are read with `torch.load(path, map_location="cpu", weights_only=True)`: tensors and plain
containers only, never arbitrary unpickling. Every tensor must map to a weight and every weight must be set;
anything else (not a state dict, an unknown or missing key, a shape that does not fit) is a one-line error
naming the key and the shapes, exit code 2, and nothing is written (the run directory is built in a
temporary folder beside it and renamed into place at the end: utils.files.replace_folder).

Layouts (docs/pytorch-import.md): conv kernels (out, in, kh, kw) -> HWIO (kh, kw, in,
out); transposed-conv kernels (in, out, kh, kw) -> (kh, kw, out, in), tf.nn.conv2d_transpose's layout, without
flipping (both frameworks' transposed conv is the adjoint of the same cross-correlation). The official generator's
instance norms carry gamma / beta (`weight` / `bias`) and its convs no bias; the replicate's generator is the
reverse. Instance-norm `running_mean` / `running_var` / `num_batches_tracked` buffers, which old PyTorch
versions saved and instance norm does not use, are skipped with a note. A `module.` prefix (DataParallel) is
removed.

Python API (the run directory and the command are training's: training/import_torch.py):
    checkpoints = read_checkpoints("G.pth", "D.pth", "official")   # validated arrays + a NetworkConfig
    G, D = import_networks(checkpoints, name_suffix="_imported")    # TensorLayer models, weights set
"""
import itertools
import os
from dataclasses import dataclass, field

import numpy as np

from data.constants import NUM_AUS
from models.config import NetworkConfig
from utils.errors import UserError

# --- the two upstream layouts --------------------------------------------------------------------------------

VARIANTS = {
    "official": dict(
        title="official GANimation",
        g_trunk="main", g_block="main", g_color="img_reg.0", g_attention="attetion_reg.0",
        g_norm_affine=True, g_conv_bias=False,
        d_trunk="main", d_critic="conv1", d_aus="conv2"),
    "replicate": dict(
        title="ganimation_replicate",
        g_trunk="model", g_block="conv_block", g_color="color_top.0", g_attention="au_top.0",
        g_norm_affine=False, g_conv_bias=True,
        d_trunk="model", d_critic="dis_top", d_aus="aus_top"),
}
NORM_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")
DEFAULT_IMAGE_SIZE = 128


@dataclass
class Entry:
    """One PyTorch tensor and the TensorLayer weight it becomes."""
    key: str  # state-dict key (without a `module.` prefix)
    layer: str  # TensorLayer layer name without the model-name prefix, e.g. "res0_conv1"
    attr: str  # the layer's attribute: W, b, gamma, beta
    shape: tuple  # the PyTorch shape
    kind: str  # "conv" (out, in, kh, kw), "deconv" (in, out, kh, kw) or "vector"


@dataclass
class Spec:
    """What a network's state dict must hold: its entries and the module prefixes of its instance norms."""
    what: str  # e.g. "official GANimation generator (conv_dim 64, 6 residual blocks)"
    entries: list
    norms: set = field(default_factory=set)


def generator_spec(variant, conv_dim=64, n_res=6, num_aus=NUM_AUS):
    """The state-dict entries of a generator of `variant`, in the order of the TensorLayer model's weights."""
    v = VARIANTS[variant]
    t, bias, affine = v["g_trunk"], v["g_conv_bias"], v["g_norm_affine"]
    entries, norms = [], set()

    def conv(prefix, layer, c_in, c_out, k, kind="conv", with_bias=bias):
        shape = (c_in, c_out, k, k) if kind == "deconv" else (c_out, c_in, k, k)
        entries.append(Entry(f"{prefix}.weight", layer, "W", shape, kind))
        if with_bias:
            entries.append(Entry(f"{prefix}.bias", layer, "b", (c_out,), "vector"))

    def norm(prefix, layer, dim):
        norms.add(prefix)
        if affine:
            entries.append(Entry(f"{prefix}.weight", layer, "gamma", (dim,), "vector"))
            entries.append(Entry(f"{prefix}.bias", layer, "beta", (dim,), "vector"))

    conv(f"{t}.0", "stem", 3 + num_aus, conv_dim, 7)
    norm(f"{t}.1", "stem_in", conv_dim)
    dim = conv_dim
    for i in (1, 2):
        conv(f"{t}.{3 * i}", f"down{i}", dim, dim * 2, 4)
        norm(f"{t}.{3 * i + 1}", f"down{i}_in", dim * 2)
        dim *= 2
    for k in range(n_res):
        block = f"{t}.{9 + k}.{v['g_block']}"
        conv(f"{block}.0", f"res{k}_conv1", dim, dim, 3)
        norm(f"{block}.1", f"res{k}_in1", dim)
        conv(f"{block}.3", f"res{k}_conv2", dim, dim, 3)
        norm(f"{block}.4", f"res{k}_in2", dim)
    for i in (1, 2):
        index = 9 + n_res + 3 * (i - 1)
        conv(f"{t}.{index}", f"up{i}", dim, dim // 2, 4, kind="deconv")
        norm(f"{t}.{index + 1}", f"up{i}_in", dim // 2)
        dim //= 2
    conv(v["g_color"], "color", dim, 3, 7, with_bias=False)
    conv(v["g_attention"], "attention", dim, 1, 7, with_bias=False)
    return Spec(f"{v['title']} generator (conv_dim {conv_dim}, {_plural(n_res, 'residual block')})", entries, norms)


def discriminator_spec(variant, image_size=128, conv_dim=64, n_layers=6, num_aus=NUM_AUS):
    """The state-dict entries of a discriminator of `variant`, in the order of the TensorLayer model's weights."""
    v = VARIANTS[variant]
    entries, c_in, dim = [], 3, conv_dim
    for i in range(n_layers):
        entries.append(Entry(f"{v['d_trunk']}.{2 * i}.weight", f"conv{i}", "W", (dim, c_in, 4, 4), "conv"))
        entries.append(Entry(f"{v['d_trunk']}.{2 * i}.bias", f"conv{i}", "b", (dim,), "vector"))
        c_in, dim = dim, dim * 2
    k = image_size // 2 ** n_layers
    entries.append(Entry(f"{v['d_critic']}.weight", "critic", "W", (1, c_in, 3, 3), "conv"))
    entries.append(Entry(f"{v['d_aus']}.weight", "aus", "W", (num_aus, c_in, k, k), "conv"))
    return Spec(f"{v['title']} discriminator ({image_size} px, conv_dim {conv_dim}, {n_layers} layers)", entries)


def to_tensorflow_layout(array, kind):
    """A PyTorch weight -> the TensorLayer layout (models/layers.py)."""
    if kind in ("conv", "deconv"):
        # conv: (out, in, kh, kw) -> (kh, kw, in, out); deconv: (in, out, kh, kw) -> (kh, kw, out, in).
        return np.ascontiguousarray(np.transpose(array, (2, 3, 1, 0)))
    return array


# --- reading and checking state dicts -----------------------------------------------------------------------

def load_state_dict(path):
    """{key: float32 numpy array} from a PyTorch state-dict file, read with weights_only=True.

    Removes a `module.` prefix (DataParallel) and unwraps {"state_dict": {...}}. UserError when the file does
    not exist, is not a PyTorch file, or does not hold a state dict of tensors.
    """
    try:
        import torch
    except ImportError:
        raise UserError(None, "importing PyTorch checkpoints needs torch: pip install -r requirements-torch.txt") \
            from None
    if not os.path.isfile(path):
        raise UserError(path, "does not exist" if not os.path.exists(path) else "is not a file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # not a torch file, a truncated one, or pickled objects beyond tensors
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if "weights_only" in str(e) or "Weights only" in str(e):
            reason = "it holds pickled objects beyond tensors (a whole model?); save model.state_dict() instead"
        raise UserError(path, f"not a PyTorch state dict ({reason[:200]})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise UserError(path, f"not a state dict (it holds a {type(state).__name__})")
    if not state:
        raise UserError(path, "empty state dict")
    keys = [str(k) for k in state]
    if all(k.startswith("module.") for k in keys):
        state = {str(k)[len("module."):]: v for k, v in state.items()}
    arrays = {}
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise UserError(path, f"not a state dict: key {key} holds a {type(value).__name__}, not a tensor")
        if value.is_floating_point():
            value = value.detach().to(torch.float32)
        arrays[str(key)] = value.cpu().numpy()
    return arrays


def _count_prefixed(state, prefix_of):
    n = 0
    while any(k.startswith(prefix_of(n)) for k in state):
        n += 1
    return n


def infer_generator_dims(state, variant):
    """(conv_dim, n_res) read from a generator state dict (defaults where the keys are missing: the spec check
    then reports them)."""
    v = VARIANTS[variant]
    stem = state.get(f"{v['g_trunk']}.0.weight")
    conv_dim = int(stem.shape[0]) if stem is not None and stem.ndim == 4 else 64
    n_res = _count_prefixed(state, lambda k: f"{v['g_trunk']}.{9 + k}.{v['g_block']}.")
    return conv_dim, n_res if n_res else 6


def infer_discriminator_dims(state, variant):
    """(image_size or None, conv_dim, n_layers) read from a discriminator state dict."""
    v = VARIANTS[variant]
    first = state.get(f"{v['d_trunk']}.0.weight")
    conv_dim = int(first.shape[0]) if first is not None and first.ndim == 4 else 64
    n_layers = _count_prefixed(state, lambda i: f"{v['d_trunk']}.{2 * i}.") or 6
    aus = state.get(f"{v['d_aus']}.weight")
    image_size = int(aus.shape[-1]) * 2 ** n_layers if aus is not None and aus.ndim == 4 else None
    return image_size, conv_dim, n_layers


def _plural(n, word):
    return f"{n} {word}{'' if n == 1 else 's'}"


def _first_and_more(keys):
    keys = sorted(keys, key=_natural_key)
    return keys[0] + (f" (and {len(keys) - 1} more)" if len(keys) > 1 else "")


def _natural_key(key):
    return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in key.split(".")]


def _identify(state):
    """Which upstream network a state dict looks like, as (variant, "generator"/"discriminator"), or None."""
    for variant, v in VARIANTS.items():
        if not any(k.startswith(f"{v['g_trunk']}.") for k in state):  # the trunk name is the same in G and D
            continue
        if f"{v['g_color']}.weight" in state or f"{v['g_attention']}.weight" in state:
            return variant, "generator"
        if f"{v['d_critic']}.weight" in state or f"{v['d_aus']}.weight" in state:
            return variant, "discriminator"
    return None


def match_spec(state, spec, path, variant, network):
    """Check a state dict against a spec; return ({(layer, attr): TF-layout array}, notes).

    UserError (one line, naming the key and the shapes) for an unknown key, a missing key, a shape mismatch or
    non-finite values. Instance-norm running-statistics buffers are skipped with a note.
    """
    looks_like = _identify(state)
    if looks_like and looks_like != (variant, network):
        other_variant, other_network = looks_like
        if other_network == network:
            problem = f"of {VARIANTS[other_variant]['title']}, not of {VARIANTS[variant]['title']}"
            hint = f"use --variant {other_variant}"
        else:
            problem = f"of {VARIANTS[other_variant]['title']}, not a {network}"
            hint = f"give it as --{'gen' if other_network == 'generator' else 'dis'}"
        raise UserError(path, f"a {other_network} checkpoint {problem} ({hint})")
    expected = {e.key: e for e in spec.entries}
    buffers = [k for k in state if k.rsplit(".", 1)[0] in spec.norms and k.rsplit(".", 1)[-1] in NORM_BUFFERS]
    unknown = [k for k in state if k not in expected and k not in buffers]
    if unknown:
        raise UserError(path, f"unknown key {_first_and_more(unknown)}: not part of the {spec.what}")
    missing = [k for k in expected if k not in state]
    if missing:
        raise UserError(path, f"missing key {_first_and_more(missing)} of the {spec.what}")
    arrays = {}
    for e in spec.entries:
        value = state[e.key]
        if tuple(value.shape) != e.shape:
            raise UserError(path, f"key {e.key}: shape {tuple(value.shape)} in the checkpoint, {e.shape} expected "
                                  f"by the {spec.what}")
        if value.dtype != np.float32:
            raise UserError(path, f"key {e.key}: {value.dtype} values, floating point expected")
        if not np.all(np.isfinite(value)):
            raise UserError(path, f"key {e.key}: holds NaN or infinite values")
        arrays[(e.layer, e.attr)] = to_tensorflow_layout(value, e.kind)
    notes = []
    if buffers:
        notes.append(f"{path}: skipped {_plural(len(buffers), 'instance-norm buffer')} (running_mean / "
                     f"running_var; instance norm normalises each image by its own statistics and never uses them)")
    return arrays, notes


@dataclass
class Checkpoints:
    """Validated arrays of one or both networks and the NetworkConfig that builds matching TensorLayer models."""
    variant: str
    net: NetworkConfig
    g_arrays: dict
    d_arrays: dict  # empty when no discriminator was given
    gen_path: str
    dis_path: str
    notes: list
    summary: list  # one line per network


def read_checkpoints(gen_path, dis_path, variant, image_size=None, net_overrides=None):
    """Read and check the generator (and optional discriminator) state dicts of `variant` without TensorFlow.

    image_size: None reads it from the discriminator's AU head (128 without a discriminator); a value that does
    not fit the discriminator is a shape error on its AU head key. Both upstream generators tile the AUs over the
    image: net_overrides (NetworkConfig fields) cannot ask for another conditioning.
    """
    if variant not in VARIANTS:
        raise UserError(None, f"unknown variant {variant!r} (official or replicate)")
    conditioning = (net_overrides or {}).get("conditioning", "tile")
    if conditioning != "tile":
        raise UserError(gen_path, f"cannot import with conditioning {conditioning}: the PyTorch GANimation "
                                  "generators tile the AUs over the image (conditioning tile)")
    g_state = load_state_dict(gen_path)
    d_state = load_state_dict(dis_path) if dis_path else None
    g_conv_dim, n_res = infer_generator_dims(g_state, variant)
    g_spec = generator_spec(variant, g_conv_dim, n_res)
    g_arrays, notes = match_spec(g_state, g_spec, gen_path, variant, "generator")
    summary = [f"{gen_path}: {g_spec.what}, {len(g_arrays)} tensors"]
    d_arrays, d_conv_dim, d_layers = {}, 64, 6
    if d_state is not None:
        d_size, d_conv_dim, d_layers = infer_discriminator_dims(d_state, variant)
        image_size = image_size or d_size or DEFAULT_IMAGE_SIZE
        d_spec = discriminator_spec(variant, image_size, d_conv_dim, d_layers)
        d_arrays, d_notes = match_spec(d_state, d_spec, dis_path, variant, "discriminator")
        notes += d_notes
        summary.append(f"{dis_path}: {d_spec.what}, {len(d_arrays)} tensors")
    image_size = image_size or DEFAULT_IMAGE_SIZE
    v = VARIANTS[variant]
    values = dict(image_size=image_size, g_conv_dim=g_conv_dim, d_conv_dim=d_conv_dim, n_res=n_res,
                  d_layers=d_layers, g_norm_affine=v["g_norm_affine"], g_conv_bias=v["g_conv_bias"])
    values.update(net_overrides or {})
    try:
        net = NetworkConfig(**values).validate()
    except ValueError as e:
        raise UserError(gen_path, f"cannot build a model for it: {e}") from None
    return Checkpoints(variant, net, g_arrays, d_arrays, gen_path, dis_path, notes, summary)


# --- setting the TensorLayer weights ------------------------------------------------------------------------

def assign_weights(model, arrays, path):
    """Assign {(layer, attr): array} to a TensorLayer model built with the matching configuration. Every array
    must find its weight and every weight of the model must be set."""
    layers = {layer.name[len(model.name) + 1:]: layer for layer in model.all_layers}
    assigned = set()
    for (layer_name, attr), value in arrays.items():
        layer = layers.get(layer_name)
        variable = getattr(layer, attr, None) if layer is not None else None
        if variable is None:
            raise RuntimeError(f"{model.name} has no weight {layer_name}.{attr} (the mapping and "
                               f"models/networks.py disagree)")
        if tuple(variable.shape) != value.shape:
            raise UserError(path, f"weight {variable.name}: shape {value.shape} from the checkpoint, "
                                  f"{tuple(variable.shape)} in the model")
        variable.assign(value)
        assigned.add(id(variable))
    unset = [w.name for w in model.all_weights if id(w) not in assigned]
    if unset:
        raise RuntimeError(f"{model.name}: {_plural(len(unset), 'weight')} not set by the checkpoint, first "
                           f"{unset[0]} (the mapping and models/networks.py disagree)")


_suffixes = itertools.count()


def import_networks(checkpoints, name_suffix=None):
    """(G, D): TensorLayer models built from checkpoints.net with the imported weights, in eval mode.
    D keeps its random initialisation when no discriminator was given."""
    from models.networks import build_networks
    G, D = build_networks(checkpoints.net, name_suffix or f"_torch{next(_suffixes)}")
    assign_weights(G, checkpoints.g_arrays, checkpoints.gen_path)
    if checkpoints.d_arrays:
        assign_weights(D, checkpoints.d_arrays, checkpoints.dis_path)
    G.eval()
    D.eval()
    return G, D


if __name__ == "__main__":  # the command line, the top layer: writing a run directory is training's (import_torch)
    from training.import_torch import main
    from utils.cli import run_main
    run_main(main)
