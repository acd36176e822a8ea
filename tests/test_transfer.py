"""Transfer learning (models/transfer.py): a trained AdaIN run moved to 5 labels keeps every other weight."""
import numpy as np
import pytest

from conftest import tiny_config
from models.networks import get_generator
from models.transfer import copy_weights, transfer_networks
from test_training import _batch, _changed, _values
from training.state import TrainingState, transfer_run
from training.steps import GANimationSteps


def _train(steps, config, num_aus, n=1):
    real, y_src = _batch(config, num_aus=num_aus)
    for _ in range(n):
        y_tgt, alpha = steps.sample_targets(y_src), steps.sample_alpha(config.batch)
        d = steps.critic_step(real, y_src, y_tgt, alpha)
        g = steps.generator_step(real, y_src, y_tgt, alpha)
    return {k: float(v) for k, v in {**d, **g}.items()}


def _by_name(model):
    return {w.name[len(model.name) + 1:]: w.numpy() for w in model.all_weights}


@pytest.mark.slow  # 21 s under load
def test_a_trained_adain_run_moves_to_five_labels_and_trains(tmp_path, name):
    config = tiny_config(conditioning="adain")
    (tmp_path / "config.json").write_text(config.to_json())
    run = TrainingState(config, str(tmp_path), name_suffix=name("_src"))
    _train(run.steps, config, 17)
    run.save()

    G5, D5 = transfer_run(str(tmp_path), num_aus=5, name_suffix=name("_5"))  # loads the checkpoint
    assert G5.label_size == 5
    for old, new, label_layer in ((run.G, G5, "embed1/"), (run.D, D5, "aus/")):
        old, new = _by_name(old), _by_name(new)
        assert old.keys() == new.keys()
        kept = [k for k in new if not k.startswith(label_layer)]
        assert len(kept) == len(new) - (2 if label_layer == "embed1/" else 1)  # embed1 W and b; D's bias-free head
        for k in kept:
            np.testing.assert_array_equal(new[k], old[k], err_msg=k)
    assert _by_name(G5)["embed1/weights:0"].shape == (5, 64) and _by_name(D5)["aus/filters:0"].shape[-1] == 5

    steps = GANimationSteps(G5, D5, config)
    before = _values(G5)
    metrics = _train(steps, config, 5)
    assert all(np.isfinite(v) for v in metrics.values())
    assert _changed(before, G5)


@pytest.mark.slow  # 8 s under load
def test_tile_generators_and_other_architectures_are_refused(name):
    tiny = dict(image_size=32, conv_dim=8, n_res=1)
    tile = get_generator(**tiny, name=name("T"))
    with pytest.raises(ValueError, match="needs --conditioning adain"):
        transfer_networks(tile, None, tiny_config().net, num_aus=5)
    A = get_generator(**tiny, conditioning="adain", name=name("A"))
    wider = get_generator(**dict(tiny, conv_dim=4), conditioning="adain", name=name("W"))
    with pytest.raises(ValueError, match="stem/filters .* not the same architecture"):
        copy_weights(A, wider, "embed1")
    deeper = get_generator(**dict(tiny, n_res=2), conditioning="adain", name=name("D"))
    with pytest.raises(ValueError, match="res1_conv1/filters .*no such weight"):
        copy_weights(A, deeper, "embed1")
