"""Edit the expression of a face crop with a trained GANimation export.

  python infer.py --src face.jpg --aus aus.csv                       # newest export under runs/
  python infer.py --src face.jpg --aus aus.csv --model runs/RUN/export --out edits/

--aus takes an OpenFace CSV (AU01_r ... AU45_r, either header style) or a CSV whose header names the 17 AUs
(AU01 ... AU45), one target expression per row, intensities on OpenFace's 0-5 scale. One PNG is written per row:
OUT/<src name>_<row>.png (or _<label> when the CSV has an expression/name/label/id column), at the model's
image size (a crop of another size is resized first).
"""
import argparse
import os

from utils.cli import quiet_tensorflow, run_main


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--src", required=True, help="the face crop to edit (JPEG, PNG, ...)")
    parser.add_argument("--aus", required=True, help="CSV of target AUs, one expression per row")
    parser.add_argument("--model", help="an export folder or a run folder (default: the newest export under runs/)")
    parser.add_argument("--out", default="out", help="output folder (default: out)")
    parser.add_argument("--save-attention", action="store_true",
                        help="also write the attention mask (<name>_<row>_attention.png; white keeps the input)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from data.aus import read_au_csv
    from data.images import read_image, write_image
    image = read_image(args.src)  # bad input fails before TensorFlow starts
    aus = read_au_csv(args.aus)
    quiet_tensorflow()
    from inference.edit import edit_crop, load_model, resolve_model_dir, row_labels
    model_dir = resolve_model_dir(args.model)
    model = load_model(model_dir)
    out = edit_crop(model, image, aus)
    stem = os.path.splitext(os.path.basename(args.src))[0]
    for label, edited, attention in zip(row_labels(args.aus, len(aus)), out["images"], out["attention"]):
        path = os.path.join(args.out, f"{stem}_{label}.png")
        write_image(path, edited)
        if args.save_attention:
            write_image(os.path.join(args.out, f"{stem}_{label}_attention.png"),
                        (attention[:, :, 0] * 255).round().astype("uint8"))
        print(path)
    return 0


if __name__ == "__main__":
    run_main(main)
