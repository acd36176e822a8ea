"""Properties of the built-in synthetic faces (data/synthetic.py)."""
import numpy as np
import pytest

from data import synthetic
from data.constants import AU_MAX, AU_NAMES, NUM_AUS
from data.faceset import FaceSet
from data.synthetic import (HELD_OUT_IDENTITY_OFFSET, au_regions, face_mask, make_synthetic_faces,
                            render_face, sample_aus)
from utils.errors import UserError

NEUTRAL = np.zeros(NUM_AUS)
# A few identities with different looks (one wears glasses, one has dark skin).
IDENTITIES = (0, 3, 33)

# Mean absolute difference (0-255 levels, over the 3 channels) inside au_regions()[name] between the
# neutral face and the face with only that AU at 5, at 128 px. About 70% of the smallest value measured
# over identities 0-59, so a weakened effect fails while identity variation does not.
MIN_REGION_CHANGE = {
    "AU01": 3.5, "AU02": 3.5, "AU04": 4.0, "AU05": 9.0, "AU06": 2.3, "AU07": 6.5, "AU09": 2.8,
    "AU10": 2.4, "AU12": 1.0, "AU14": 0.9, "AU15": 0.8, "AU17": 1.3, "AU20": 0.9, "AU23": 1.2,
    "AU25": 1.5, "AU26": 5.0, "AU45": 12.0,
}
# Pixels changed by at least 3 levels in some channel; every AU measured >= 168 at 128 px, >= 49 at 64 px.
MIN_CHANGED_PIXELS = {128: 150, 64: 40}
# Share of the total absolute change that falls inside the AU's documented region (measured >= 0.99).
MIN_SHARE_IN_REGION = 0.97


def only(name, value):
    aus = NEUTRAL.copy()
    aus[AU_NAMES.index(name)] = value
    return aus


def absdiff(a, b):
    return np.abs(a.astype(np.int16) - b.astype(np.int16))


@pytest.fixture(scope="module")
def regions():
    return {(i, s): au_regions(i, s) for i in IDENTITIES for s in (64, 128)}


# ------------------------------------------------------------------------------------------ rendering

@pytest.mark.parametrize("size", [32, 64, 128, 50])
def test_shape_dtype_and_range(size):
    img = render_face(7, sample_aus(np.random.default_rng(1), 1)[0], size)
    assert img.shape == (size, size, 3) and img.dtype == np.uint8
    assert img.std() > 20  # a picture, not a flat fill


def test_deterministic_even_after_the_cache_is_dropped():
    aus = sample_aus(np.random.default_rng(5), 3)
    first = [render_face(11, a, 64).tobytes() for a in aus]
    synthetic._layers.cache_clear()
    assert [render_face(11, a, 64).tobytes() for a in aus] == first
    assert face_mask(11, 64).tobytes() == face_mask(11, 64).tobytes()


def test_render_does_not_let_callers_corrupt_the_cache():
    img = render_face(2, NEUTRAL, 64)
    img[:] = 0
    face_mask(2, 64)[:] = False
    assert render_face(2, NEUTRAL, 64).any() and face_mask(2, 64).any()


def test_identities_differ():
    faces = [render_face(i, NEUTRAL, 64) for i in range(8)]
    for i in range(len(faces)):
        for j in range(i):
            assert absdiff(faces[i], faces[j]).mean() > 5, (i, j)


def test_identity_variation_covers_glasses_hair_and_skin():
    params = [synthetic._identity_params(i) for i in range(300)]
    glasses = np.mean([p.glasses is not None for p in params])
    assert 0.12 < glasses < 0.28
    assert len({p.hair_style for p in params}) >= 4
    brightness = [np.mean(p.skin) for p in params]
    assert max(brightness) - min(brightness) > 100  # light to dark skin tones


def test_aus_are_clipped_to_0_5():
    aus = np.linspace(-3, 8, NUM_AUS)
    assert np.array_equal(render_face(4, aus, 64), render_face(4, np.clip(aus, 0, AU_MAX), 64))


@pytest.mark.parametrize("bad", [np.zeros(16), np.zeros(18), np.full(NUM_AUS, np.nan)])
def test_bad_aus_raise(bad):
    with pytest.raises(ValueError):
        render_face(0, bad, 64)


@pytest.mark.parametrize("size", [0, 31, 64.5])
def test_bad_size_raises(size):
    with pytest.raises(ValueError):
        render_face(0, NEUTRAL, size)


# ------------------------------------------------------------------------------------------- the AUs

@pytest.mark.parametrize("name", AU_NAMES)
def test_each_au_changes_its_own_region_at_128(name, regions):
    for identity in IDENTITIES:
        neutral = render_face(identity, NEUTRAL, 128)
        full = absdiff(render_face(identity, only(name, 5.0), 128), neutral)
        half = absdiff(render_face(identity, only(name, 2.5), 128), neutral)
        region = regions[identity, 128][name]
        assert full[region].mean() >= MIN_REGION_CHANGE[name], identity
        assert (full.max(-1) >= 3).sum() >= MIN_CHANGED_PIXELS[128], identity
        assert full[region].sum() >= MIN_SHARE_IN_REGION * full.sum(), identity
        assert not full[~face_mask(identity, 128)].any(), identity
        assert 0 < half[region].mean() < full[region].mean(), identity  # monotone in the intensity


@pytest.mark.parametrize("name", AU_NAMES)
def test_each_au_is_visible_at_64(name, regions):
    identity = IDENTITIES[0]
    full = absdiff(render_face(identity, only(name, 5.0), 64), render_face(identity, NEUTRAL, 64))
    assert full[regions[identity, 64][name]].mean() >= 0.7 * MIN_REGION_CHANGE[name]
    assert (full.max(-1) >= 3).sum() >= MIN_CHANGED_PIXELS[64]


@pytest.mark.parametrize("name", AU_NAMES)
def test_small_intensity_steps_give_small_changes(name):
    """No thresholds: 2.4 -> 2.6 changes far less than 0 -> 5, and the change from neutral grows."""
    identity = IDENTITIES[1]
    neutral = render_face(identity, NEUTRAL, 64)
    step = absdiff(render_face(identity, only(name, 2.4), 64), render_face(identity, only(name, 2.6), 64))
    full = absdiff(render_face(identity, only(name, 5.0), 64), neutral)
    assert 0 < step.sum() < 0.25 * full.sum()
    totals = [absdiff(render_face(identity, only(name, v), 64), neutral).sum() for v in (0.5, 1.5, 3.5, 5.0)]
    assert all(np.diff(totals) > 0), totals


def luminance(img):
    return img.astype(np.float64) @ [0.299, 0.587, 0.114]


def vertical_shift(identity, name):
    """How far (px at 128) an AU moves dark features down in its region: the row centroid of pixels that
    got darker minus that of pixels that got brighter. Negative means up."""
    region = au_regions(identity, 128)[name]
    neutral = luminance(render_face(identity, NEUTRAL, 128))
    change = luminance(render_face(identity, only(name, 5.0), 128)) - neutral
    rows = np.arange(128)[:, None]
    darker, brighter = np.clip(-change, 0, None) * region, np.clip(change, 0, None) * region
    return (rows * darker).sum() / darker.sum() - (rows * brighter).sum() / brighter.sum()


@pytest.mark.parametrize("identity", IDENTITIES)
def test_aus_move_features_the_documented_way(identity):
    # measured over identities 0-11: brow raisers <= -5.3 px, brow lowerer >= 3.1, AU12 <= -2.5, AU15 >= 1.9
    assert vertical_shift(identity, "AU01") < -3
    assert vertical_shift(identity, "AU02") < -3
    assert vertical_shift(identity, "AU04") > 2
    assert vertical_shift(identity, "AU12") < -1.5  # corners up
    assert vertical_shift(identity, "AU15") > 1.5  # corners down


@pytest.mark.parametrize("identity", IDENTITIES)
def test_eye_and_mouth_openings(identity):
    eyes = au_regions(identity, 128)["AU05"]
    mouth = au_regions(identity, 128)["AU23"]  # around the lips, without the neck below the chin

    def sclera(aus):  # visible white of the eyes: bright and grey
        img = render_face(identity, aus, 128).astype(np.int16)
        return ((img.min(-1) > 170) & (img.max(-1) - img.min(-1) < 40) & eyes).sum()

    def mouth_hole(aus):  # teeth and the dark red inside of the mouth
        img = render_face(identity, aus, 128).astype(np.int16)
        teeth = (img.min(-1) > 160) & (img.max(-1) - img.min(-1) < 40)
        inside = np.abs(img - [72, 22, 28]).max(-1) < 20
        return ((teeth | inside) & mouth).sum()

    closed = sclera(only("AU45", 5.0))  # no eye white left, only a glint on glasses if any
    assert closed < 0.5 * sclera(NEUTRAL)

    def opened(aus):  # eye white relative to the neutral face's
        return (sclera(aus) - closed) / (sclera(NEUTRAL) - closed)

    # measured over identities 0-59: AU05 2.2-3.1, AU06 0.5-0.78, AU07 0.1-0.3 of the neutral eye white
    assert opened(only("AU05", 5.0)) > 1.8  # eyes open wider
    assert opened(only("AU06", 5.0)) < 0.9  # lower lids pushed up
    assert opened(only("AU07", 5.0)) < 0.36  # narrowed from below
    # measured over identities 0-59: neutral <= 1 px, lips part 29-46 px, jaw drop >= 137 px
    assert mouth_hole(NEUTRAL) + 10 < mouth_hole(only("AU25", 5.0)) < 0.5 * mouth_hole(only("AU26", 5.0))


def test_combined_aus_compose():
    """AU12 added to an open mouth (AU25 + AU26) still acts on its own region: an open smile."""
    identity = IDENTITIES[0]
    reg = au_regions(identity, 128)
    neutral = render_face(identity, NEUTRAL, 128)
    lips_part = render_face(identity, only("AU25", 4.0), 128)
    open_mouth = render_face(identity, only("AU25", 4.0) + only("AU26", 4.0), 128)
    open_smile = render_face(identity, only("AU25", 4.0) + only("AU26", 4.0) + only("AU12", 4.0), 128)
    jaw = reg["AU26"]
    assert absdiff(open_mouth, neutral)[jaw].mean() > 2 * absdiff(lips_part, neutral)[jaw].mean()
    smile = absdiff(open_smile, open_mouth)
    assert smile[reg["AU12"]].mean() > 0.5 * MIN_REGION_CHANGE["AU12"]
    moved_mouth = reg["AU12"] | jaw  # the jaw drop has carried the lower lip down
    assert smile[moved_mouth].sum() >= MIN_SHARE_IN_REGION * smile.sum()
    assert not smile[reg["AU01"] | reg["AU45"]].any()  # brows and eyes are left alone


# ----------------------------------------------------------------------------------- background, masks

def test_background_is_identical_for_any_aus():
    rng = np.random.default_rng(3)
    vectors = list(sample_aus(rng, 6)) + list(rng.uniform(0, 5, (4, NUM_AUS))) + [np.full(NUM_AUS, 5.0)]
    for identity in IDENTITIES + (12, 25):
        mask = face_mask(identity, 64)
        neutral = render_face(identity, NEUTRAL, 64)
        raw_neutral = synthetic._render_unmasked(identity, NEUTRAL, 64)
        for aus in vectors:
            assert np.array_equal(render_face(identity, aus, 64)[~mask], neutral[~mask])
            # The mask is honest: even before the background is pinned, nothing outside it moves.
            assert np.array_equal(synthetic._render_unmasked(identity, aus, 64)[~mask], raw_neutral[~mask])


@pytest.mark.parametrize("size", [32, 128])
def test_face_mask_covers_the_face_but_not_the_frame(size):
    for identity in IDENTITIES:
        mask = face_mask(identity, size)
        assert mask.shape == (size, size) and mask.dtype == bool
        assert mask[size // 2, size // 2] and not mask[0, 0] and not mask[0, -1]
        assert 0.3 < mask.mean() < 0.9


def test_au_regions_shapes_and_placement(regions):
    for identity in IDENTITIES:
        reg = regions[identity, 128]
        mask = face_mask(identity, 128)
        assert list(reg) == list(AU_NAMES)
        rows = {}
        for name, r in reg.items():
            assert r.shape == (128, 128) and r.dtype == bool and r.sum() > 100
            assert not (r & ~mask).any(), name
            rows[name] = np.nonzero(r.any(1))[0].mean()
        # brows above eyes above nose above mouth above jaw
        assert rows["AU04"] < rows["AU45"] < rows["AU09"] < rows["AU23"] < rows["AU26"]
        assert not (reg["AU45"] & reg["AU23"]).any()


# ----------------------------------------------------------------------------------------- sampling

def test_sample_aus_looks_like_openface():
    aus = sample_aus(np.random.default_rng(0), 4000)
    assert aus.shape == (4000, NUM_AUS) and aus.dtype == np.float32
    assert aus.min() >= 0 and aus.max() <= AU_MAX
    active = aus > 0
    assert active.mean() < 0.25  # mostly zeros
    per_face = active.sum(1)
    assert 0.05 < (per_face == 0).mean() < 0.25  # some neutral faces
    assert per_face.max() <= 4
    values = aus[active]
    assert values.max() > 4.5 and np.median(values) > 1.0 and values.min() < 0.5  # spread over (0, 5]
    assert active.any(0).all()  # every AU shows up
    p12 = active[:, AU_NAMES.index("AU12")]
    p06 = active[:, AU_NAMES.index("AU06")]
    assert p12[p06].mean() > 2 * p12.mean()  # smiles: AU06 comes with AU12


def test_sample_aus_is_reproducible_and_handles_zero():
    assert np.array_equal(sample_aus(np.random.default_rng(9), 50), sample_aus(np.random.default_rng(9), 50))
    assert sample_aus(np.random.default_rng(9), 0).shape == (0, NUM_AUS)


# ------------------------------------------------------------------------------------------- source

def test_make_synthetic_source():
    src = make_synthetic_faces(3, 2, size=32, seed=4)
    assert isinstance(src, FaceSet) and len(src) == 6
    assert src.images.shape == (6, 32, 32, 3) and src.paths is None
    assert list(src.ids) == [f"syn_id{i:05d}_{k:03d}" for i in range(3) for k in range(2)]
    assert np.array_equal(src.aus, sample_aus(np.random.default_rng(4), 6))
    for i in range(6):
        assert np.array_equal(src.images[i], render_face(i // 2, src.aus[i], 32))


def test_make_synthetic_source_held_out_identities():
    assert HELD_OUT_IDENTITY_OFFSET == 1_000_000
    train = make_synthetic_faces(2, 2, size=32, seed=0)
    test = make_synthetic_faces(2, 2, size=32, seed=0, identity_offset=HELD_OUT_IDENTITY_OFFSET)
    assert test.ids[0] == "syn_id1000000_000" and test.ids[-1] == "syn_id1000001_001"
    assert len(set(train.ids) | set(test.ids)) == 8
    assert np.array_equal(test.images[2], render_face(HELD_OUT_IDENTITY_OFFSET + 1, test.aus[2], 32))
    assert not np.array_equal(test.images[0], train.images[0])  # same AUs, other person


@pytest.mark.parametrize("kwargs", [
    dict(n_identities=0, per_identity=1),
    dict(n_identities=1, per_identity=0),
    dict(n_identities=1, per_identity=1, size=16),
    dict(n_identities=1, per_identity=1, identity_offset=-1),
])
def test_make_synthetic_source_rejects_bad_arguments(kwargs):
    with pytest.raises(UserError):
        make_synthetic_faces(**kwargs)


@pytest.mark.parametrize("flags, line", [
    (["--size", "8"], "error: --size: 8 is less than 32 pixels"),
    (["--identity", "-1"], "error: --identity: -1 is negative"),
])
def test_face_command_bad_flags_are_one_line(tmp_path, capsys, flags, line):
    with pytest.raises(SystemExit) as exit_info:
        synthetic.main(["--out", str(tmp_path / "face.png"), *flags])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == line + "\n"
    assert not (tmp_path / "face.png").exists()
