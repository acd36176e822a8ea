"""The ground-truth benchmark: its measures on models whose answers are known, and evaluate.py as a user runs it."""

import numpy as np
import pytest

from data.synthetic import render_face
from evaluation.groundtruth import compute_metrics, make_cases, run_cases


class Oracle:
    """Edits by rendering the truth (it recognises the source among the identities' renders)."""
    image_size = 32

    def __init__(self, cases, copy=False, noise=0.0):
        self.copy, self.noise = copy, noise
        self.lookup = {render_face(c.identity, c.source_aus, 32).tobytes(): c.identity for c in cases}
        self.rng = np.random.default_rng(0)

    def edit(self, images, aus):
        if self.copy:
            out = images.copy()
        else:
            out = np.stack([render_face(self.lookup[im.tobytes()], y, 32) for im, y in zip(images, aus)])
        if self.noise:
            out = np.clip(out + self.rng.normal(0, self.noise, out.shape), 0, 255).astype(np.uint8)
        return {"images": out, "attention": np.full(images.shape[:3] + (1,), 0.5, np.float32)}

    def estimate_aus(self, images):
        return np.zeros((len(images), 17), np.float32)


@pytest.fixture(scope="module")
def cases():
    return make_cases(n_identities=2, n_multi=3)


def test_case_counts(cases):
    kinds = [c.kind for c in cases]
    assert kinds.count("single") == 2 * 17 * 3 and kinds.count("interp") == 2 * 17 * 5
    assert kinds.count("multi") == kinds.count("noop") == 2 * 3
    assert all(c.identity >= 1_000_000 for c in cases)  # held-out identities only


def test_a_perfect_editor_scores_one(cases):
    m = compute_metrics(cases, run_cases(Oracle(cases), cases))
    assert m["single_au"]["mean_gain"] == pytest.approx(1.0) and m["multi_au"]["gain"] == pytest.approx(1.0)
    assert m["interpolation"]["monotone_aus"] == 17
    assert [m["single_au"][f"mean_gain@{v}"] for v in ("1", "2.5", "5")] == pytest.approx([1.0, 1.0, 1.0])
    assert m["single_au"]["error_on_changed"] == m["single_au"]["error_on_unchanged"] == 0.0
    assert m["noop_psnr"] == float("inf") and m["background_psnr"] == float("inf")


def test_copying_the_input_scores_zero(cases):
    m = compute_metrics(cases, run_cases(Oracle(cases, copy=True), cases))
    assert m["single_au"]["mean_gain"] == pytest.approx(0.0) and m["single_au"]["min_gain"] == pytest.approx(0.0)
    assert m["single_au"]["mean_gain@1"] == pytest.approx(0.0) and m["single_au"]["mean_gain@5"] == pytest.approx(0.0)
    # A copy's error is all on the pixels that should have changed (those within 1 gray level count as unchanged).
    assert m["single_au"]["error_on_changed"] == pytest.approx(1.0, abs=0.02)
    assert m["single_au"]["error_on_unchanged"] == pytest.approx(0.0, abs=0.02)
    assert m["interpolation"]["monotone_aus"] == 0  # a constant distance never falls
    assert m["noop_psnr"] == float("inf")


def test_noise_lowers_gain_and_psnr(cases):
    m = compute_metrics(cases, run_cases(Oracle(cases, noise=1.0), cases))
    assert 0.2 < m["single_au"]["mean_gain"] < 0.9  # noise of 1 gray level costs about half the smallest edits
    split = m["single_au"]["error_on_changed"] + m["single_au"]["error_on_unchanged"]
    assert split == pytest.approx(m["single_au"]["l1"] / m["single_au"]["source_l1"], rel=1e-5)  # 1 - pooled gain
    assert m["single_au"]["error_on_unchanged"] > 0.1  # the noise lies on every pixel
    by_intensity = [m["single_au"][f"mean_gain@{v}"] for v in ("1", "2.5", "5")]
    assert by_intensity == sorted(by_intensity) and by_intensity[0] < by_intensity[2] - 0.1  # weakest edits lose most
    assert 45 < m["noop_psnr"] < 50 and 45 < m["background_psnr"] < 50  # sigma 1 of 255: 48 dB
