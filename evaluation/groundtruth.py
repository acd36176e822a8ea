"""Ground-truth evaluation on the built-in synthetic faces.

Real datasets cannot say how close an edit is to the truth; the synthetic faces can: `render_face(identity, aus)`
is the true image of any expression. Every measure here uses identities never seen in training
(from data.synthetic.HELD_OUT_IDENTITY_OFFSET on).

Measures (images compared on the [0, 1] scale):
- edit gain = 1 - sum err(output, truth) / sum err(source, truth), err = mean |a - b| over the edit's region
  (the union of data.synthetic.au_regions of the AUs that change, grown by size / 32 pixels): 0 = the model
  copied its input, 1 = a perfect edit, < 0 = worse than copying. The region keeps the score about the edit:
  an AU changes a few percent of the image, so whole-image errors would mostly measure reconstruction noise,
  which the no-op and background PSNRs measure on their own.
  Single-AU edits: a neutral source, the target sets one AU to 1, 2.5 or 5. Multi-AU edits: source and target
  AUs drawn like training data (another sample's AUs plus noise).
  Where the error lies (single-AU edits): the output's error on the pixels the edit changes and on the region's
  other pixels, each as a fraction of copying's error, so that gain = 1 - changed - unchanged (error_split).
- no-op PSNR: target = source AUs, output against input.
- background PSNR: output against input outside the face (data.synthetic.face_mask), over all edits.
- interpolation: for each AU, targets a * (AU = 5) for a = 0, 0.25, ..., 1 from a neutral source; the distance of
  each output to the final true render must fall as a grows, step by step, as the true renders' own distance
  does ("monotone", see _falls_like_truth); the error to the true render at each a is reported too.
- attention: mean of A, and the fractions above 0.99 and below 0.01 (saturation).
- the discriminator's AU estimate on the outputs against the target (the model judging itself), next to the same
  estimate on the true renders (how well the AU head reads a face at all).

A model is anything with `image_size`, `edit(images_uint8, aus_0_5) -> {"images", "attention", ...}` and
`estimate_aus(images_uint8) -> aus_0_5` (models.export.LoadedModel or models.export.InMemoryModel).
"""
from dataclasses import dataclass

import numpy as np

from data.constants import AU_MAX, AU_NAMES, NUM_AUS
import cv2

from data.synthetic import HELD_OUT_IDENTITY_OFFSET, au_regions, face_mask, render_face, sample_aus

SINGLE_INTENSITIES = (1.0, 2.5, 5.0)
ALPHAS = (0.0, 0.25, 0.5, 0.75, 1.0)
TARGET_NOISE = 0.1 * AU_MAX  # the training targets' noise, on the 0-5 scale

@dataclass
class Case:
    identity: int
    source_aus: np.ndarray  # (17,) on 0-5
    target_aus: np.ndarray
    kind: str  # "single", "multi", "noop", "interp"
    au: int = -1  # the AU of a single-AU or interpolation case
    value: float = 0.0  # its intensity, or the interpolation's a


def make_cases(n_identities=8, n_multi=6, seed=0):
    """The held-out edits: per identity, 17 x 3 single-AU edits, n_multi multi-AU edits, n_multi no-ops, and
    17 x 5 interpolation steps."""
    rng = np.random.default_rng(seed)
    cases = []
    for i in range(n_identities):
        identity = HELD_OUT_IDENTITY_OFFSET + i
        neutral = np.zeros(NUM_AUS, np.float32)
        for k in range(NUM_AUS):
            for v in SINGLE_INTENSITIES:
                cases.append(Case(identity, neutral, _one_hot(k, v), "single", k, v))
            for a in ALPHAS:
                cases.append(Case(identity, neutral, _one_hot(k, a * AU_MAX), "interp", k, a))
        sources, targets = sample_aus(rng, n_multi), sample_aus(rng, n_multi)
        noise = rng.uniform(-TARGET_NOISE, TARGET_NOISE, targets.shape)
        targets = np.clip(targets + noise * (targets > 0), 0, AU_MAX).astype(np.float32)  # noise on active AUs
        for src, tgt in zip(sources, targets):
            cases.append(Case(identity, src, tgt, "multi"))
            cases.append(Case(identity, src, src, "noop"))
    return cases


def _one_hot(k, value):
    y = np.zeros(NUM_AUS, np.float32)
    y[k] = value
    return y


def run_cases(model, cases, batch_size=32):
    """Render sources and truths, edit, and estimate AUs. Returns a dict of arrays aligned with `cases`."""
    size = model.image_size
    cache = {}

    def render(identity, aus):
        key = (identity, aus.tobytes())
        if key not in cache:
            cache[key] = render_face(identity, aus, size)
        return cache[key]

    sources = np.stack([render(c.identity, c.source_aus) for c in cases])
    truths = np.stack([render(c.identity, c.target_aus) for c in cases])
    targets = np.stack([c.target_aus for c in cases])
    outputs, attention, estimates = [], [], []
    for s in range(0, len(cases), batch_size):
        out = model.edit(sources[s:s + batch_size], targets[s:s + batch_size])
        outputs.append(out["images"])
        attention.append(out["attention"])
        estimates.append(model.estimate_aus(out["images"]))
    truth_estimates = np.concatenate([model.estimate_aus(truths[s:s + batch_size])
                                      for s in range(0, len(cases), batch_size)])
    return dict(sources=sources, truths=truths, targets=targets, outputs=np.concatenate(outputs),
                attention=np.concatenate(attention), estimates=np.concatenate(estimates),
                truth_estimates=truth_estimates)


def _l1(a, b, regions=None):
    """Mean |a - b| per image on the [0, 1] scale, over `regions` (N, H, W) when given. a, b: uint8 (N, H, W, 3)."""
    diff = np.abs(a.astype(np.float32) - b.astype(np.float32)).mean(axis=3) / 255.0  # (N, H, W)
    if regions is None:
        return diff.mean(axis=(1, 2))
    return (diff * regions).sum(axis=(1, 2)) / np.maximum(regions.sum(axis=(1, 2)), 1)


def edit_regions(cases, size):
    """(N, H, W) bool: per case, where its changing AUs act (grown by size / 32 px); the face for a no-op."""
    grow = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * max(1, size // 32) + 1,) * 2)
    by_identity = {i: au_regions(i, size) for i in {c.identity for c in cases}}
    out = np.zeros((len(cases), size, size), bool)
    for n, c in enumerate(cases):
        changing = np.flatnonzero(np.abs(c.source_aus - c.target_aus) > 0)
        if c.kind == "interp":  # judged on the region of its AU, whatever a is
            changing = [c.au]
        if len(changing) == 0:
            out[n] = face_mask(c.identity, size)
            continue
        region = np.any([by_identity[c.identity][AU_NAMES[k]] for k in changing], axis=0)
        out[n] = cv2.dilate(region.astype(np.uint8), grow) > 0
    return out


def psnr(a, b, mask=None):
    """PSNR in dB over all images together (uint8, peak 255); `mask` (N, H, W) picks the pixels."""
    diff = (a.astype(np.float64) - b.astype(np.float64)) ** 2
    if mask is not None:
        diff = diff[mask]
    mse = diff.mean()
    return float("inf") if mse == 0 else float(10 * np.log10(255.0 ** 2 / mse))


def _falls_like_truth(distances, truth_distances, tolerance=0.01):
    """Whether the outputs' distance to the final target falls step by step as the true renders' does.

    A step may rise only where the true renders' own distance rises (a drawn shape can pass through pixels
    that are not on the straight path, e.g. a dimple forming), plus 1% of the starting distance for rounding;
    and the sequence must end lower than it starts.
    """
    slack = tolerance * distances[0]
    steps_ok = all(d1 - d0 <= max(0.0, t1 - t0) + slack
                   for d0, d1, t0, t1 in zip(distances, distances[1:], truth_distances, truth_distances[1:]))
    return bool(steps_ok and distances[-1] < distances[0])


def error_split(sources, truths, outputs, regions):
    """Where an edit's error lies: (on the pixels the edit changes, on the region's other pixels), each as a
    fraction of copying's error over the region, so that gain = 1 - changed - unchanged. A pixel changes when the
    true render differs from the source by more than 1 gray level (mean over channels). uint8 (N, H, W, 3)
    images, regions (N, H, W) bool."""
    def diff(a, b):
        return np.abs(a.astype(np.float32) - b.astype(np.float32)).mean(axis=3) / 255.0  # (N, H, W)

    copy_err, out_err = diff(sources, truths), diff(outputs, truths)
    changed = copy_err > 1.0 / 255.0
    size = np.maximum(regions.sum(axis=(1, 2), keepdims=True), 1)  # per-image means over the region, as _l1
    total = max(float((copy_err * regions / size).sum()), 1e-12)
    return (float((out_err * (regions & changed) / size).sum()) / total,
            float((out_err * (regions & ~changed) / size).sum()) / total)


def _gain(out_err, src_err):
    return float(1.0 - out_err.sum() / max(src_err.sum(), 1e-12))


def compute_metrics(cases, results):
    """All measures as a JSON-ready dict."""
    kinds = np.array([c.kind for c in cases])
    aus = np.array([c.au for c in cases])
    values = np.array([c.value for c in cases])
    regions = edit_regions(cases, results["outputs"].shape[1])
    out_err = _l1(results["outputs"], results["truths"], regions)
    src_err = _l1(results["sources"], results["truths"], regions)

    per_au = {}
    for k, name in enumerate(AU_NAMES):
        sel = (kinds == "single") & (aus == k)
        row = {"gain": _gain(out_err[sel], src_err[sel])}
        for v in SINGLE_INTENSITIES:
            s = sel & (values == v)
            row[f"gain@{v:g}"] = _gain(out_err[s], src_err[s])
        row["psnr"] = psnr(results["outputs"][sel], results["truths"][sel])
        per_au[name] = row
    single = kinds == "single"
    multi = kinds == "multi"
    noop = kinds == "noop"

    interp, monotone = {}, 0
    for k, name in enumerate(AU_NAMES):
        to_final, truth_to_final, to_truth = [], [], []
        final = (kinds == "interp") & (aus == k) & (values == 1.0)
        for a in ALPHAS:
            sel = (kinds == "interp") & (aus == k) & (values == a)
            to_final.append(float(_l1(results["outputs"][sel], results["truths"][final], regions[sel]).mean()))
            truth_to_final.append(float(_l1(results["truths"][sel], results["truths"][final], regions[sel]).mean()))
            to_truth.append(float(out_err[sel].mean()))
        is_monotone = _falls_like_truth(to_final, truth_to_final)
        monotone += is_monotone
        interp[name] = {"distance_to_target": to_final, "error_to_truth": to_truth, "monotone": is_monotone}
        per_au[name]["monotone"] = is_monotone

    size = results["outputs"].shape[1]
    masks = {i: face_mask(i, size) for i in {c.identity for c in cases}}
    background = np.stack([~masks[c.identity] for c in cases])  # (N, H, W): True outside the face
    edits = single | multi
    attention = results["attention"][single]
    gains = [per_au[n]["gain"] for n in AU_NAMES]
    metrics = {
        "n_identities": len({c.identity for c in cases}),
        "image_size": int(results["outputs"].shape[1]),
        "single_au": {"mean_gain": float(np.mean(gains)), "min_gain": float(np.min(gains)),
                      **{f"mean_gain@{v:g}": float(np.mean([per_au[n][f"gain@{v:g}"] for n in AU_NAMES]))
                         for v in SINGLE_INTENSITIES},
                      "l1": float(out_err[single].mean()), "source_l1": float(src_err[single].mean()),
                      **dict(zip(("error_on_changed", "error_on_unchanged"),
                                 error_split(*(results[k][single] for k in ("sources", "truths", "outputs")),
                                             regions[single]))),
                      "psnr": psnr(results["outputs"][single], results["truths"][single])},
        "multi_au": {"gain": _gain(out_err[multi], src_err[multi]), "l1": float(out_err[multi].mean()),
                     "source_l1": float(src_err[multi].mean()),
                     "psnr": psnr(results["outputs"][multi], results["truths"][multi])},
        "noop_psnr": psnr(results["outputs"][noop], results["sources"][noop]),
        "background_psnr": psnr(results["outputs"][edits], results["sources"][edits], background[edits]),
        "interpolation": {"monotone_aus": int(monotone), "per_au": interp},
        "attention": {"mean": float(attention.mean()), "above_0.99": float((attention > 0.99).mean()),
                      "below_0.01": float((attention < 0.01).mean())},
        "self_judged_au_mae": float(np.abs(results["estimates"][edits] - results["targets"][edits]).mean()),
        "au_head_mae_on_truth": float(np.abs(results["truth_estimates"][edits] - results["targets"][edits]).mean()),
        "per_au": per_au,
    }
    return metrics


def evaluate(model, n_identities=8, n_multi=6, seed=0):
    """Run the whole benchmark. Returns (metrics, cases, results)."""
    cases = make_cases(n_identities, n_multi, seed)
    results = run_cases(model, cases)
    return compute_metrics(cases, results), cases, results


def summary_scalars(metrics):
    """The headline numbers, flat, for TensorBoard and logs."""
    return {
        "eval/single_gain_mean": metrics["single_au"]["mean_gain"],
        "eval/single_gain_min": metrics["single_au"]["min_gain"],
        **{f"eval/single_gain@{v:g}": metrics["single_au"][f"mean_gain@{v:g}"] for v in SINGLE_INTENSITIES},
        "eval/error_on_changed": metrics["single_au"]["error_on_changed"],
        "eval/error_on_unchanged": metrics["single_au"]["error_on_unchanged"],
        "eval/multi_gain": metrics["multi_au"]["gain"],
        "eval/noop_psnr": metrics["noop_psnr"],
        "eval/background_psnr": metrics["background_psnr"],
        "eval/monotone_aus": metrics["interpolation"]["monotone_aus"],
        "eval/attention_mean": metrics["attention"]["mean"],
        "eval/self_judged_au_mae": metrics["self_judged_au_mae"],
    }


def single_au_gain(model, identity, au, intensities=SINGLE_INTENSITIES):
    """Edit gain of one AU on one identity (neutral source), e.g. to check that a small run learns at all."""
    cases = [Case(identity, np.zeros(NUM_AUS, np.float32), _one_hot(au, v), "single", au, v) for v in intensities]
    results = run_cases(model, cases)
    regions = edit_regions(cases, model.image_size)
    return _gain(_l1(results["outputs"], results["truths"], regions),
                 _l1(results["sources"], results["truths"], regions))
