"""Train GANimation (Pumarola et al., ECCV 2018) with TensorFlow + TensorLayer.

  python train.py --epochs 30 --batch 25                   # the paper's run, on the built-in synthetic faces
  python train.py --data DATASET_DIR --epochs 30 --batch 25
  python train.py --resume runs/RUN                        # continue a stopped run from its last checkpoint
  python train.py --export-only --resume runs/RUN          # write RUN/export from the last checkpoint
"""
from utils.cli import ArgumentParser, interrupted, quiet_tensorflow, run_main


def parse_args(argv=None):
    from training.config import add_config_arguments
    parser = ArgumentParser(
        description=__doc__,
        epilog="Every run gets its own folder under --runs-dir with config.json, log.txt, metrics.jsonl, "
               "TensorBoard events (tb/), sample grids (samples/), checkpoints/ and the SavedModel (export/).")
    parser.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its last checkpoint "
                        "(its saved config is used; flags given here override it, e.g. --epochs to extend)")
    parser.add_argument("--export-only", action="store_true",
                        help="with --resume: export RUN_DIR/export from the last checkpoint and stop")
    parser.add_argument("--dry-run", action="store_true", help="print the resolved configuration and stop")
    add_config_arguments(parser)
    return parser, parser.parse_args(argv)


def main(argv=None):
    parser, args = parse_args(argv)
    import os

    from utils.errors import UserError
    from training.config import config_from_args, load_training_data, read_run_config, resolve_precision
    if args.export_only and not args.resume:
        parser.error("--export-only needs --resume RUN_DIR")
    base = None
    if args.resume:
        base = read_run_config(args.resume)
    try:
        config = config_from_args(args, base, resolve=False)  # --precision auto is resolved after the data check
    except ValueError as e:
        raise UserError(None, str(e)) from None
    if args.dry_run:
        print(resolve_precision(config).to_json())
        return 0
    # What needs no TensorFlow is checked before its slow import: the data, a checkpoint to export.
    if args.export_only and not os.path.isfile(os.path.join(args.resume, "checkpoints", "checkpoint")):
        raise UserError(args.resume, "has no checkpoint to export")
    faces = None if args.export_only else load_training_data(config)
    quiet_tensorflow(init_runtime=False)
    config = resolve_precision(config)
    from training.distribute import make_strategy
    strategy = make_strategy(config.strategy, config.cpu_devices)  # before TensorFlow's runtime starts
    from training.loop import start
    run_dir, done = start(config, resume_dir=args.resume, export_only=args.export_only, strategy=strategy,
                          faces=faces)
    if done == "signal":  # checkpointed; the log says how to resume
        return interrupted()
    print(run_dir)
    return 0


if __name__ == "__main__":
    run_main(main)
