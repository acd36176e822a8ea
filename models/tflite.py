"""TFLite models of the export's `edit` signature, for on-device editing.

    python -m models.tflite runs/RUN/export                     # writes edit_fp32.tflite, edit_fp16.tflite
    python -m models.tflite runs/RUN/export --variants fp32,fp16,dynamic

Each file holds one signature, `edit`, that takes one face and returns what the SavedModel's `edit` returns:
  inputs   images uint8 (1, S, S, 3), aus float32 (1, label_size) on OpenFace's 0-5 scale
  outputs  images uint8 (1, S, S, 3), attention float32 (1, S, S, 1), color uint8 (1, S, S, 3)
Batch 1: the SavedModel's single-image path is an XLA function behind a `tf.cond` on the batch size; with the
batch fixed, the converter folds the condition and keeps one graph without control flow, all of whose ops
TFLite's XNNPACK delegate runs.

Variants (VARIANTS): fp32 (the same arithmetic as the SavedModel); fp16 (weights stored as float16, half the
size, computed in float32); dynamic (dynamic-range quantization: int8 weights, a quarter of the size, int8
arithmetic where TFLite has kernels for it). tests/test_tflite.py states how close each is to the SavedModel.

A bf16 export cannot be converted as it is (TFLite has no bfloat16 kernels): its generator is rebuilt in float32
from ganimation.json with the export's weights, so its TFLite files compute in float32.

The files go into the export folder, after the SavedModel's folder was swapped into place
(models/export.py), each written atomically. A re-export replaces the whole folder, so no TFLite file of an
older model stays beside a newer SavedModel; a run killed between the two steps leaves a complete export
without TFLite files (`python train.py --export-only --resume RUN --tflite` writes them).
"""
import itertools
import os
import tempfile
import warnings

import numpy as np

from utils.errors import UserError
from utils.cli import ArgumentParser, quiet_stderr
from utils.files import atomic_write_bytes

VARIANTS = ("fp32", "fp16", "dynamic")
DEFAULT_VARIANTS = ("fp32", "fp16")
SIGNATURE = "edit"


def tflite_path(export_dir, variant):
    return os.path.join(export_dir, f"edit_{variant}.tflite")


def write_tflite(export_dir, variants=DEFAULT_VARIANTS):
    """Convert the export's edit signature and write EXPORT/edit_<variant>.tflite for each variant.
    Returns the paths written. A UserError when export_dir is not an export or cannot be converted."""
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown TFLite variant {unknown[0]!r} (known: {', '.join(VARIANTS)})")
    from models.export import read_metadata  # TensorFlow: imported here, so that the command starts quietly
    meta = read_metadata(export_dir)  # a UserError when export_dir is not an export
    with tempfile.TemporaryDirectory(prefix="ganimation-tflite-") as tmp:
        single = _single_image_saved_model(export_dir, meta, tmp)
        paths = []
        for variant in variants:
            data = _convert(single, variant, export_dir)
            atomic_write_bytes(tflite_path(export_dir, variant), data)
            paths.append(tflite_path(export_dir, variant))
    return paths


def _single_image_saved_model(export_dir, meta, tmp):
    """A SavedModel in tmp with one signature, `edit`, at batch 1: the export's own edit function (an fp32
    export), or the same function of a float32 copy of its generator (a bf16 export)."""
    import tensorflow as tf
    from models.export import GANimationModule
    size, labels = int(meta["image_size"]), int(meta["label_size"])
    try:
        loaded = tf.saved_model.load(export_dir)
    except Exception as e:
        raise UserError(export_dir, f"cannot load the SavedModel ({type(e).__name__})") from None
    if meta.get("precision", "fp32") == "fp32":
        edit, weights = loaded.edit, list(loaded.g_weights)
    else:
        module = GANimationModule(*_float32_networks(export_dir, meta, loaded), size)
        edit, weights = module._edit, module.g_weights
    holder = tf.Module()
    holder.g_weights = weights  # the variables the edit captures (and nothing of D's)
    holder.edit = tf.function(lambda images, aus: edit(images, aus), input_signature=[
        tf.TensorSpec([1, size, size, 3], tf.uint8, name="images"),
        tf.TensorSpec([1, labels], tf.float32, name="aus")])
    path = os.path.join(tmp, "single")
    tf.saved_model.save(holder, path, signatures={SIGNATURE: holder.edit.get_concrete_function()})
    return path


def _float32_networks(export_dir, meta, loaded):
    """(G, D) of the export's architecture in float32 (D tiny: the edit never calls it), G holding the export's
    weights."""
    from models.networks import get_discriminator, get_generator
    need = ("g_conv_dim", "n_res", "g_norm_affine", "g_conv_bias")
    missing = [k for k in need if k not in meta]
    if missing:
        raise UserError(export_dir, f"a {meta.get('precision')} export needs {', '.join(missing)} in ganimation.json "
                                    "to be rebuilt in float32 for TFLite (re-export it with train.py --export-only)")
    name = f"G_tflite_{next(_names)}"
    G = get_generator(int(meta["image_size"]), int(meta["g_conv_dim"]), int(meta["n_res"]), int(meta["label_size"]),
                      norm_affine=bool(meta["g_norm_affine"]), conv_bias=bool(meta["g_conv_bias"]),
                      conditioning=meta["conditioning"], adain_dim=int(meta.get("adain_dim", 64)), name=name)
    saved = list(loaded.g_weights)
    if [tuple(w.shape) for w in G.all_weights] != [tuple(w.shape) for w in saved]:
        raise UserError(export_dir, "the generator rebuilt from ganimation.json does not match the SavedModel's "
                                    "weights")
    for w, v in zip(G.all_weights, saved):
        w.assign(v)
    D = get_discriminator(int(meta["image_size"]), 1, 1, int(meta["label_size"]), name=name + "_D")
    return G, D


def _convert(saved_model_dir, variant, export_dir):
    import tensorflow as tf
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir, signature_keys=[SIGNATURE])
    if variant == "fp16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif variant == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    try:
        with quiet_stderr():  # the converter's MLIR passes print pages of notes
            return converter.convert()
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(export_dir, f"TFLite conversion ({variant}) failed: {first}") from None


class TFLiteEditor:
    """A TFLite file of the edit signature, run with tf.lite.Interpreter: `edit(images_uint8, aus_0_5)` on numpy
    arrays of N faces (one interpreter call each), returning what LoadedModel.edit returns."""

    def __init__(self, path, num_threads=None):
        import tensorflow as tf
        if not os.path.isfile(path):
            raise UserError(path, "does not exist")
        with warnings.catch_warnings():  # it moves to the ai_edge_litert package (same API); TF 2.21 ships it
            warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated", category=UserWarning)
            self.interpreter = tf.lite.Interpreter(model_path=path, num_threads=num_threads or os.cpu_count())
        self.runner = self.interpreter.get_signature_runner(SIGNATURE)

    def edit(self, images, aus):
        outs = [self.runner(images=np.asarray(images[i:i + 1], np.uint8), aus=np.asarray(aus[i:i + 1], np.float32))
                for i in range(len(images))]
        return {k: np.concatenate([o[k] for o in outs]) for k in outs[0]}


_names = itertools.count()  # TensorLayer model names are global to a process


def compare(export_dir, variants=DEFAULT_VARIANTS, n=4, seed=0):
    """{variant: {max_levels, mean_levels, attention_max}}: each TFLite file against the SavedModel on n random
    faces and targets (images and color in gray levels, attention on [0, 1])."""
    from models.export import LoadedModel
    model = LoadedModel(export_dir)
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, model.image_size, model.image_size, 3), dtype=np.uint8)
    aus = rng.uniform(0, 5, (n, model.label_size)).astype(np.float32)
    want = model.edit(images, aus)
    out = {}
    for variant in variants:
        got = TFLiteEditor(tflite_path(export_dir, variant)).edit(images, aus)
        levels = np.concatenate([np.abs(got[k].astype(int) - want[k].astype(int)).ravel() for k in ("images", "color")])
        out[variant] = dict(max_levels=int(levels.max()), mean_levels=float(levels.mean()),
                            attention_max=float(np.abs(got["attention"] - want["attention"]).max()))
    return out


def main(argv=None):
    parser = ArgumentParser(prog="python -m models.tflite", description=__doc__)
    parser.add_argument("export", help="an export folder (RUN/export)")
    parser.add_argument("--variants", default=",".join(DEFAULT_VARIANTS),
                        help=f"comma-separated, of {', '.join(VARIANTS)} (default: {','.join(DEFAULT_VARIANTS)})")
    args = parser.parse_args(argv)
    variants = tuple(v for v in args.variants.split(",") if v)
    if any(v not in VARIANTS for v in variants):
        parser.error(f"--variants: each of {', '.join(VARIANTS)}")
    paths = write_tflite(args.export, variants)
    for variant, scores in compare(args.export, variants).items():
        path = tflite_path(args.export, variant)
        print(f"{path}: {os.path.getsize(path) / 1e6:.1f} MB; against the SavedModel on 4 random faces: "
              f"max {scores['max_levels']} gray levels (mean {scores['mean_levels']:.3f}), attention max "
              f"{scores['attention_max']:.2g}")
    return 0 if paths else 1


if __name__ == "__main__":
    from utils.cli import quiet_tensorflow, run_main
    quiet_tensorflow()
    run_main(main)
