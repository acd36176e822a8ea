"""Change the expression of the faces in a photo with a trained GANimation export.

  python infer.py --src photo.jpg --expression happy                 # newest export under runs/
  python infer.py --src photo.jpg --aus aus.csv --model runs/RUN --out edits/
  python infer.py --src photo.jpg --ref other.jpg                    # expression transfer
  python infer.py --src photo.jpg --expression all --animate 12 --pingpong
  python infer.py --src face.jpg --driver driver.mp4                 # video reenactment
  python infer.py --src face.jpg --driver driver.mp4 --driver-aus driver.csv  # ... with OpenFace's AUs
  python infer.py --src photos/ --expression happy,sad               # every image of a folder

Every face is found (MTCNN), aligned on the eyes, edited, and pasted back with a soft edge; the rest of the photo
is untouched. `--no-detect` edits the whole image as one face crop and writes the edited crop at the model's size;
so does an image of exactly the model's size (an aligned crop, as in training; --detect searches it anyway), and
a small image (at most 256 pixels a side) in which no face is found.

Targets: --aus takes an OpenFace CSV (AU01_r ... AU45_r, either header style) or a CSV whose header names the 17
AUs (AU01 ... AU45), one target expression per row, intensities on OpenFace's 0-5 scale. Outputs are named
OUT/<src name>_<row>.png, or _<label> when the CSV has an expression/name/label/id column (--expression: the
expression's name; --ref: ref_<reference name>).
"""
from utils.cli import ArgumentParser, run_main


def parse_args(argv=None):
    """infer.py's flags, in the sections of --help. argparse refuses a second target (or none) with exit code 2;
    inference/cli.py checks what argparse cannot say (which flags go together, ranges)."""
    from inference.cli import MAX_OUTPUTS
    p = ArgumentParser(description=__doc__)
    i = p.add_argument_group("inputs")
    i.add_argument("--src", required=True, metavar="PATH",
                   help="the photo (any size; JPEG, PNG, ...) or a folder of photos")
    i.add_argument("--src-aus", metavar="CSV",
                   help="CSV of the source's own AUs (one row, or one per face); default: estimated with the "
                        "model's AU head. Animations start from them")
    t = p.add_argument_group("target expression (exactly one of --aus, --expression, --ref, --driver)")
    target = t.add_mutually_exclusive_group(required=True)
    target.add_argument("--aus", metavar="CSV", help="CSV of target AUs, one expression per row")
    target.add_argument("--expression", metavar="NAMES",
                        help="happy, sad, surprise, fear, anger, disgust, contempt, neutral: one, several "
                             "separated by commas, or all (EMFACS prototypes)")
    target.add_argument("--ref", metavar="IMAGE",
                        help="a photo of another face: its AUs (the model's AU head) are the target")
    target.add_argument("--driver", metavar="VIDEO",
                        help="a video: each frame's AUs drive the face; writes an MP4 at its frame rate")
    t.add_argument("--intensity", type=float, default=3.5, metavar="X",
                   help="strength of --expression on the 0-5 scale")
    t.add_argument("--driver-aus", metavar="CSV",
                   help="with --driver: the driver's OpenFace FeatureExtraction CSV, matched by its frame column "
                        "(default: the model's AU head on each frame's largest face)")
    f = p.add_argument_group("faces")
    f.add_argument("--face", default="all", metavar="WHICH",
                   help="which faces to edit: all, largest, or numbers counted largest first (2, 1,3)")
    detect = f.add_mutually_exclusive_group()  # default None: detect unless the image is a crop of the model's size
    detect.add_argument("--no-detect", dest="detect", action="store_const", const=False,
                        help="edit the whole image as one face crop")
    detect.add_argument("--detect", dest="detect", action="store_const", const=True,
                        help="search for faces even in an image of exactly the model's size (by default taken to "
                        "be an aligned face crop)")
    f.add_argument("--margin", type=float, default=0.1, metavar="X",
                   help="space around the face in the crop, a fraction of the face's size, as the training "
                        "crops were made")
    m = p.add_argument_group("model")
    m.add_argument("--model", metavar="PATH",
                   help="an export folder or a run folder (default: the newest export under runs/)")
    m.add_argument("--batch-size", type=int, default=16, metavar="N", help="crops per model call")
    o = p.add_argument_group("outputs")
    o.add_argument("--out", default="out", metavar="DIR", help="output folder")
    o.add_argument("--save-attention", action="store_true",
                   help="also write the attention mask (<name>_<row>_attention.png; white keeps the input)")
    o.add_argument("--save-crops", action="store_true", help="also write each aligned face crop and its edit")
    o.add_argument("--strip", action="store_true",
                   help="also write a panel per target: input | attention | color | output, one row per face "
                        "(not with --driver)")
    o.add_argument("--max-outputs", type=int, default=MAX_OUTPUTS, metavar="N",
                   help="refuse to write more than N files: a long --aus CSV or a large folder asks for the limit "
                        "to be raised on purpose")
    o.add_argument("--quiet", action="store_true", help="no progress bar")
    a = p.add_argument_group("animation (of a still target; not with --driver)")
    a.add_argument("--animate", type=int, metavar="N",
                   help="write a GIF and an MP4 of N frames from the source's expression to the target")
    a.add_argument("--pingpong", action="store_true", help="with --animate: there and back")
    a.add_argument("--fps", type=float, default=12.0, metavar="X", help="frame rate of --animate")
    return p.parse_args(argv)


def main(argv=None):
    from inference.cli import main as run
    return run(parse_args(argv))


if __name__ == "__main__":
    run_main(main)
