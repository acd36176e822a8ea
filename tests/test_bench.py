"""The benchmark's pure parts: config names, the analytic FLOP count, the comparison with PyTorch's fastest."""
import pytest

from bench.train_step import Config, compare_with_torch, conv_gflop, machine_info


def test_config_names():
    c = Config("8x64w32r4")
    assert (c.batch, c.size, c.width, c.n_res, c.d_layers) == (8, 64, 32, 4, 6) and c.name == "8x64w32r4"
    assert Config("25x128").name == "25x128" and Config("25x128").width == 64
    with pytest.raises(ValueError, match="BATCHxSIZE"):
        Config("128")


@pytest.mark.parametrize("spec, expected", [
    ("1x64", {"g_forward": 5.31, "d_forward": 0.34, "critic": 9.40, "generator": 32.40}),
    ("1x128", {"g_forward": 21.26, "d_forward": 1.37, "critic": 37.62, "generator": 129.59})])
def test_flop_count_agrees_with_performance_md(spec, expected):
    got = conv_gflop(Config(spec))
    for k, v in expected.items():
        assert got[k] == pytest.approx(v, rel=0.01), k


def test_ours_against_torchs_fastest_of_the_same_precision():
    def row(framework, variant, precision, critic, gen, single):
        return dict(framework=framework, variant=variant, precision=precision, conditioning="tile", critic_s=critic,
                    generator_s=gen, images_per_s=5 * 8 / (5 * critic + gen), single_image_ms=single)
    torch = "pytorch 2.13"
    rows = [row(torch, "fp32", "fp32", 4.0, 3.0, 90), row(torch, "fp32-compiled", "fp32", 2.0, 2.0, 100),
            row(torch, "bf16", "bf16", 1.0, 1.0, 40), row("tensorflow", "fp32", "fp32", 1.0, 2.5, 80),
            row("tensorflow", "bf16", "bf16", 0.5, 2.0, 50)]
    lines = compare_with_torch(rows)
    ours = rows[3]["vs_torch_fastest"]
    assert ours["images_per_s_of"] == "fp32-compiled" and ours["images_per_s"] == pytest.approx(12 / 7.5)
    assert ours["generator_step"] == pytest.approx(2.0 / 2.5) and ours["single_image"] == pytest.approx(80 / 90)
    assert rows[3]["goals_met"] == {"images_per_s": True, "generator_step": False, "single_image": True}
    assert rows[4]["vs_torch_fastest"]["images_per_s_of"] == "bf16" and len(lines) == 2
    assert "generator step 0.80x" in lines[0] and "MISSED" in lines[0]


def test_machine_info_names_the_bf16_flags():
    info = machine_info()
    assert {"avx512_bf16", "amx_bf16"} <= set(info["flags"]) or not info["flags"]
    assert isinstance(info["bf16_native"], bool) and info["bf16_why"]
