"""A run directory from PyTorch checkpoints (models/convert_torch.py reads and checks them), and the command
`python -m models.convert_torch` that writes one.

    checkpoints = read_checkpoints("G.pth", "D.pth", "official")   # models.convert_torch, no TensorFlow
    write_run_dir(checkpoints, "runs/official")                     # config.json, checkpoints/, export/, log.txt
    convert("G.pth", "D.pth", "official", "runs/official")          # both, as the command
"""
import itertools
import json
import os
import sys

from models import convert_torch
from models.convert_torch import VARIANTS, assign_weights, read_checkpoints
from training.config import TrainConfig
from utils.cli import ArgumentParser
from utils.errors import UserError

_suffixes = itertools.count()


def write_run_dir(checkpoints, out_dir, name_suffix=None):
    """The run directory for imported weights: checkpoints/ (step 0), export/, log.txt and config.json (last),
    built beside out_dir and renamed into place when complete (utils.files.replace_folder). Returns out_dir."""
    from training.state import TrainingState
    from utils.files import atomic_write_text, replace_folder
    check_new_run_dir(out_dir)
    out_dir = os.path.abspath(out_dir)
    config = TrainConfig(net=checkpoints.net, runs_dir=os.path.dirname(out_dir), run_name=os.path.basename(out_dir))
    with replace_folder(out_dir, "config.json") as tmp:
        import tensorflow as tf
        tf.keras.utils.set_random_seed(config.seed)  # a D without checkpoint starts as a fresh run's would
        state = TrainingState(config, tmp, name_suffix=name_suffix or f"_torch{next(_suffixes)}")
        assign_weights(state.G, checkpoints.g_arrays, checkpoints.gen_path)
        if checkpoints.d_arrays:
            assign_weights(state.D, checkpoints.d_arrays, checkpoints.dis_path)
        state.save()
        state.export()
        meta_path = os.path.join(tmp, "export", "ganimation.json")
        with open(meta_path) as f:
            meta = json.load(f)
        meta.update(run_dir=out_dir, imported_from=dict(
            variant=checkpoints.variant, generator=os.path.abspath(checkpoints.gen_path),
            discriminator=os.path.abspath(checkpoints.dis_path) if checkpoints.dis_path else None))
        atomic_write_text(meta_path, json.dumps(meta, indent=2, sort_keys=True))
        atomic_write_text(os.path.join(tmp, "log.txt"), "\n".join(
            ["imported from PyTorch checkpoints (models/convert_torch.py):"] + checkpoints.summary
            + checkpoints.notes) + "\n")
        atomic_write_text(os.path.join(tmp, "config.json"), config.to_json())  # last: the run is complete
        if os.path.exists(out_dir):
            raise UserError(out_dir, "already exists; choose a new run directory")
    return out_dir


def check_new_run_dir(out_dir):
    """UserError when out_dir exists (after a run directory left beside it by a killed import is moved in)."""
    from utils.files import recover_folder
    recover_folder(out_dir, "config.json")
    if os.path.exists(out_dir):
        raise UserError(out_dir, "already exists; choose a new run directory")


def convert(gen_path, dis_path, variant, out_dir, image_size=None):
    """What the command does: check the checkpoints, write the run directory. Returns (out_dir, checkpoints)."""
    check_new_run_dir(out_dir)  # before reading anything large
    checkpoints = read_checkpoints(gen_path, dis_path, variant, image_size)
    return write_run_dir(checkpoints, out_dir), checkpoints


def parse_args(argv=None):
    """The flags of `python -m models.convert_torch`, in the sections of --help."""
    parser = ArgumentParser(
        prog="python -m models.convert_torch", description=convert_torch.__doc__.split("\n\nPython API")[0])
    c = parser.add_argument_group("checkpoints (PyTorch state dicts, read with weights_only=True)")
    c.add_argument("--gen", required=True, metavar="G.pth",
                   help="generator state dict (official: net_epoch_E_id_G.pth; replicate: E_net_gen.pth)")
    c.add_argument("--dis", metavar="D.pth", help="discriminator state dict (official: net_epoch_E_id_D.pth; "
                   "replicate: E_net_dis.pth); without it the critic is randomly initialised and the export's "
                   "estimate_aus is meaningless")
    c.add_argument("--variant", required=True, choices=sorted(VARIANTS),
                   help="official: Pumarola et al.'s GANimation; replicate: donydchen/ganimation_replicate")
    c.add_argument("--image-size", type=int, metavar="N",
                   help="face crop size (default: read from the discriminator, else 128)")
    o = parser.add_argument_group("output")
    o.add_argument("--out", required=True, metavar="RUN_DIR", help="the run directory to write (must not exist)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    check_new_run_dir(args.out)
    checkpoints = read_checkpoints(args.gen, args.dis, args.variant, args.image_size)  # all checks, no TF yet
    for line in checkpoints.summary + checkpoints.notes:
        print(line, file=sys.stderr)
    if not args.dis:
        print("note: no --dis given: the discriminator is randomly initialised (estimate_aus is meaningless, "
              "and training from this run starts with an untrained critic)", file=sys.stderr)
    from utils.cli import quiet_tensorflow
    quiet_tensorflow()
    out = write_run_dir(checkpoints, args.out)
    print(f"wrote {out} (edit faces: python infer.py --model {out} --src FACE --aus AUS.csv)", file=sys.stderr)
    print(out)
    return 0
