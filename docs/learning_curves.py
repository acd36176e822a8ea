"""Learning curves of training runs from their in-training evaluation (metrics.jsonl): a metric against images seen.

  python docs/learning_curves.py --out docs/learning_curves.png base=runs/base ema=runs/ema ...
  python docs/learning_curves.py --metric eval/noop_psnr --at 10000,30000 a=runs/a b=runs/b

Each LABEL=RUN_DIR is one line of the plot. Images seen = critic step x batch (config.json), counted from the
end of an --au-head-start (images seen by the generator's phase). Prints a markdown table: the metric at the
--at image counts (the evaluation at or just before), its best value (the lowest for an error), and the
training minutes to the last evaluation (from log.txt's times, evaluations included).
"""
import datetime
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from utils.cli import ArgumentParser  # noqa: E402


def read_curve(run_dir, metric):
    """[(images, minutes, value)] of one run's in-training evaluations."""
    with open(os.path.join(run_dir, "config.json")) as f:
        config = json.load(f)
    batch, head_start = config["batch"], config.get("au_head_start", 0)
    values = {}
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        for line in f:
            row = json.loads(line)
            if metric in row:
                values[row["step"]] = row[metric]  # a resumed run's repeated steps: the last one counts
    minutes, start = {}, None
    with open(os.path.join(run_dir, "log.txt")) as f:
        for line in f:
            stamp, _, text = line[:23], line[23:24], line[24:]
            try:
                t = datetime.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f")
            except ValueError:
                continue
            if text.startswith("data:") and start is None:
                start = t
            elif text.startswith("step ") and ":" in text and start is not None:
                step = int(text[5:text.index(":")])
                minutes[step] = (t - start).total_seconds() / 60
    return [((step - head_start) * batch, minutes.get(step), values[step]) for step in sorted(values)]


def value_at(curve, images):
    """The value of the last evaluation at or before `images` (None before the first)."""
    seen = [v for n, _, v in curve if n <= images]
    return seen[-1] if seen else None


def main(argv=None):
    parser = ArgumentParser(description=__doc__)
    parser.add_argument("runs", nargs="+", metavar="LABEL=RUN_DIR")
    parser.add_argument("--metric", default="eval/single_gain_mean", help="a key of metrics.jsonl")
    parser.add_argument("--at", default="10000,30000", help="image counts for the table (comma-separated)")
    parser.add_argument("--out", help="write the plot here (PNG)")
    parser.add_argument("--title", default="")
    parser.add_argument("--ymin", type=float, help="the plot's lowest value (early evaluations can be far below)")
    args = parser.parse_args(argv)
    curves = {}
    for item in args.runs:
        label, sep, path = item.partition("=")
        if not sep:
            parser.error(f"{item}: expected LABEL=RUN_DIR")
        try:
            curves[label] = read_curve(path, args.metric)
        except (OSError, KeyError, ValueError) as e:
            print(f"error: {path}: not a run with metrics ({e})", file=sys.stderr)
            return 2
    at = [int(float(a)) for a in args.at.split(",") if a]
    print(f"| run | " + " | ".join(f"{args.metric} at {a:,} images" for a in at) + " | best | minutes | images |")
    print("|---" * (len(at) + 4) + "|")
    for label, curve in curves.items():
        cells = [value_at(curve, a) for a in at]
        lower_is_better = "error" in args.metric or "mae" in args.metric  # errors: the best is the lowest
        best = (min if lower_is_better else max)((v for _, _, v in curve), default=None)
        last = curve[-1] if curve else (0, None, None)
        print(f"| {label} | " + " | ".join("-" if c is None else f"{c:.3f}" for c in cells)
              + f" | {'-' if best is None else f'{best:.3f}'} | "
              + f"{'-' if last[1] is None else f'{last[1]:.1f}'} | {last[0]:,} |")
    if args.out:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(8, 5), dpi=110)
        for label, curve in curves.items():
            ax.plot([n / 1000 for n, _, _ in curve], [v for _, _, v in curve], marker=".", label=label)
        ax.axhline(0.0, color="gray", lw=0.8, ls="--")
        ax.set_xlabel("images seen (thousands)")
        ax.set_ylabel(args.metric)
        if args.ymin is not None:
            ax.set_ylim(bottom=args.ymin)
        ax.set_title(args.title or args.metric)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(args.out)
        print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
