"""Ground-truth evaluation of a trained GANimation on held-out synthetic faces.

  python evaluate.py --model runs/RUN                 # or runs/RUN/export
  python evaluate.py --model runs/RUN --identities 16 --out eval/

The built-in synthetic faces know the true image of every expression, so edits are scored against the truth:
edit gain per AU and for multi-AU edits (0 = copied the input, 1 = perfect), no-op and background PSNR,
interpolation monotonicity, attention saturation, and the discriminator's AU estimate of the outputs.
Writes eval.json, eval.md and eval.png (per AU: source | true target | output | attention) to --out
(default: RUN/eval).
"""
import os

from utils.cli import ArgumentParser, quiet_tensorflow, run_main


def parse_args(argv=None):
    parser = ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True, help="an export folder or a run folder with export/")
    parser.add_argument("--out", help="output folder (default: <run folder>/eval)")
    parser.add_argument("--identities", type=int, default=8, help="held-out identities (default 8)")
    parser.add_argument("--multi", type=int, default=6, help="multi-AU edits and no-ops per identity (default 6)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the multi-AU draws (default 0)")
    parser.add_argument("--image-size", type=int, help="check that the model takes this size (default: its own)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from utils.errors import UserError
    if args.identities < 1 or args.multi < 1:
        raise UserError(None, "--identities and --multi must be >= 1")
    from inference.edit import load_model, resolve_model_dir
    export_dir = resolve_model_dir(args.model)  # checked before the slow TensorFlow import
    quiet_tensorflow()
    from evaluation.groundtruth import evaluate
    from evaluation.report import write_report
    model = load_model(export_dir)
    if args.image_size and args.image_size != model.image_size:
        raise UserError(export_dir, f"the model takes {model.image_size} x {model.image_size} images, "
                                    f"not {args.image_size}")
    metrics, cases, results = evaluate(model, args.identities, args.multi, args.seed)
    out = args.out or os.path.join(os.path.dirname(os.path.abspath(export_dir)), "eval")
    paths = write_report(out, metrics, cases, results, extra={"model": os.path.abspath(export_dir)})
    from evaluation.report import markdown
    print(markdown(metrics))
    print("\n".join(paths.values()))
    return 0


if __name__ == "__main__":
    run_main(main)
