"""The eight prototype expressions as AU combinations: what `infer.py --expression` uses.

EMFACS (Friesen & Ekman, 1983) lists the AU combinations that make each basic emotion's prototype; the
table below is one prototype per expression, on OpenFace's 17 AUs, at intensity about 3.5 on the 0-5 scale:

    happy     6 + 12 (+ 25)                 cheek raiser, lip corner puller; lips part a little
    sad       1 + 4 + 15 (+ 17)             inner brow raiser, brow lowerer, lip corner depressor, chin raiser
    surprise  1 + 2 + 5 + 26 (+ 25)         brows up, upper lids up, jaw drop, lips part
    fear      1 + 2 + 4 + 5 + 7 + 20 + 26 (+ 25)
    anger     4 + 5 + 7 + 23                brow lowerer, upper lid raiser, lid tightener, lip tightener
    disgust   9 + 15 + 16 -> 9 + 10 + 15 + 17   (AU16, lower lip depressor, is not among OpenFace's 17 AUs)
    contempt  R12A + R14A -> 12 + 14        (one-sided in EMFACS; OpenFace's AUs are two-sided)
    neutral   no AU

`examples/expressions.csv` is this table written out (`python -m inference.expressions --out
examples/expressions.csv`); a test checks that the two agree. `--intensity I` scales a prototype by
I / 3.5 and clips at 5, so `--intensity 1.75` is half the expression and 3.5 is the table itself.
"""
import sys

import numpy as np

from data.constants import AU_MAX, AU_NAMES
from utils.cli import ArgumentParser
from utils.errors import UserError

REFERENCE_INTENSITY = 3.5  # the intensity the table's values stand for

# AU -> intensity at REFERENCE_INTENSITY; AUs not named are 0.
EXPRESSIONS = {
    "neutral": {},
    "happy": {"AU06": 3.5, "AU12": 4.0, "AU25": 1.5},
    "sad": {"AU01": 3.5, "AU04": 2.5, "AU15": 3.5, "AU17": 2.0},
    "surprise": {"AU01": 4.0, "AU02": 4.0, "AU05": 3.5, "AU25": 3.0, "AU26": 4.0},
    "fear": {"AU01": 3.5, "AU02": 3.0, "AU04": 2.5, "AU05": 3.5, "AU07": 2.0, "AU20": 3.5, "AU25": 2.5,
             "AU26": 2.5},
    "anger": {"AU04": 4.0, "AU05": 2.5, "AU07": 3.5, "AU23": 3.5},
    "disgust": {"AU09": 4.0, "AU10": 3.0, "AU15": 2.0, "AU17": 2.0},
    "contempt": {"AU12": 2.0, "AU14": 3.5},
}


def expression_aus(name, intensity=REFERENCE_INTENSITY):
    """The 17 AUs (float32, 0-5) of one expression at `intensity` (0-5; 3.5 = the table)."""
    if name not in EXPRESSIONS:
        raise UserError("--expression", f"unknown expression {name!r} (choose from {', '.join(EXPRESSIONS)}, "
                                        "or all)")
    if not 0 <= intensity <= AU_MAX:
        raise UserError("--intensity", f"{intensity:g} is outside [0, {AU_MAX:g}]")
    aus = np.array([EXPRESSIONS[name].get(au, 0.0) for au in AU_NAMES], np.float64)
    return np.clip(aus * intensity / REFERENCE_INTENSITY, 0.0, AU_MAX).astype(np.float32)


def parse_expressions(text):
    """`happy`, `happy,sad` or `all` -> a list of names, in the order given (all: the table's order)."""
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    if names == ["all"]:
        return list(EXPRESSIONS)
    for name in names:
        expression_aus(name)  # unknown names fail here
    if not names or len(set(names)) != len(names):
        raise UserError("--expression", f"{text!r}: give names once each, separated by commas")
    return names


def expressions_csv(intensity=REFERENCE_INTENSITY):
    """The table as CSV text: an `expression` column and the 17 AU columns."""
    lines = [",".join(("expression",) + AU_NAMES)]
    for name in EXPRESSIONS:
        lines.append(",".join([name] + [str(round(float(v), 2)) for v in expression_aus(name, intensity)]))
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = ArgumentParser(prog="python -m inference.expressions",
                            description="Write the prototype expressions as an AU CSV.")
    parser.add_argument("--intensity", type=float, default=REFERENCE_INTENSITY)
    parser.add_argument("--out", help="CSV to write (default: print)")
    args = parser.parse_args(argv)
    text = expressions_csv(args.intensity)
    if args.out:
        from utils.files import atomic_write_text
        atomic_write_text(args.out, text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    from utils.cli import run_main
    run_main(main)
