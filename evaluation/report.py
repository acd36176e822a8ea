"""Writing an evaluation: eval.json, eval.md (tables) and eval.png (source | true target | output | attention)."""
import json
import os

import cv2
import numpy as np

from data.constants import AU_DESCRIPTIONS, AU_NAMES
from evaluation.groundtruth import SINGLE_INTENSITIES
from utils.files import atomic_write_text, write_png


def markdown(metrics, title="Ground-truth evaluation"):
    m = metrics
    lines = [f"## {title}", "",
             f"{m['n_identities']} held-out synthetic identities, {m['image_size']} x {m['image_size']} px. "
             "Edit gain: 0 = copies the input, 1 = the true render. (What the CPU recipe aims at: docs/experiments.md.)", "",
             "| measure | value |", "|---|---|",
             f"| mean single-AU edit gain | {m['single_au']['mean_gain']:.3f} |",
             f"| lowest single-AU edit gain | {m['single_au']['min_gain']:.3f} |",
             "| mean single-AU edit gain at intensity 1 / 2.5 / 5 | " + " / ".join(
                 f"{m['single_au'][f'mean_gain@{v:g}']:.3f}" for v in SINGLE_INTENSITIES) + " |",
             f"| single-AU error on the pixels the edit changes / on the region's other pixels (copy = 1 / 0) | "
             f"{m['single_au']['error_on_changed']:.3f} / {m['single_au']['error_on_unchanged']:.3f} |",
             f"| multi-AU edit gain | {m['multi_au']['gain']:.3f} |",
             f"| single-AU L1 to truth (source's L1) | {m['single_au']['l1']:.4f} ({m['single_au']['source_l1']:.4f}) |",
             f"| single-AU PSNR to truth | {m['single_au']['psnr']:.2f} dB |",
             f"| no-op PSNR | {m['noop_psnr']:.2f} dB |",
             f"| background PSNR | {m['background_psnr']:.2f} dB |",
             f"| AUs with monotone interpolation | {m['interpolation']['monotone_aus']} / 17 |",
             f"| attention mean (> 0.99, < 0.01) | {m['attention']['mean']:.3f} ({m['attention']['above_0.99']:.3f}, "
             f"{m['attention']['below_0.01']:.3f}) |",
             f"| D's AU estimate on outputs vs target, MAE 0-5 (model judging itself) | "
             f"{m['self_judged_au_mae']:.3f} |",
             f"| D's AU estimate on true renders vs target, MAE 0-5 | {m['au_head_mae_on_truth']:.3f} |",
             "", "| AU | | gain | @1 | @2.5 | @5 | monotone |", "|---|---|---|---|---|---|---|"]
    for name in AU_NAMES:
        r = m["per_au"][name]
        lines.append(f"| {name} | {AU_DESCRIPTIONS[name]} | {r['gain']:.3f} | {r['gain@1']:.3f} | "
                     f"{r['gain@2.5']:.3f} | {r['gain@5']:.3f} | {'yes' if r['monotone'] else 'no'} |")
    return "\n".join(lines) + "\n"


def picture(cases, results, identity=None, intensity=5.0, tile=128):
    """uint8 RGB (17 * tile, 4 * tile, 3): per AU, source | true target | output | attention (white keeps the input)."""
    identity = cases[0].identity if identity is None else identity
    rows = []
    for k, name in enumerate(AU_NAMES):
        i = next(j for j, c in enumerate(cases)
                 if c.identity == identity and c.kind == "single" and c.au == k and c.value == intensity)
        attention = np.repeat((results["attention"][i] * 255).round().astype(np.uint8), 3, axis=2)
        tiles = [results["sources"][i], results["truths"][i], results["outputs"][i], attention]
        tiles = [cv2.resize(t, (tile, tile), interpolation=cv2.INTER_NEAREST) for t in tiles]
        cv2.putText(tiles[0], name, (3, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 0), 1, cv2.LINE_AA)
        rows.append(np.concatenate(tiles, axis=1))
    return np.concatenate(rows, axis=0)


def write_report(out_dir, metrics, cases, results, extra=None):
    """eval.json, eval.md and eval.png in out_dir. Returns their paths."""
    os.makedirs(out_dir, exist_ok=True)
    paths = {k: os.path.join(out_dir, f"eval.{k}") for k in ("json", "md", "png")}
    atomic_write_text(paths["json"], json.dumps(dict(metrics, **(extra or {})), indent=2))
    atomic_write_text(paths["md"], markdown(metrics))
    write_png(paths["png"], picture(cases, results))
    return paths
