"""Benchmark: the critic step, the generator step and the export's latency, full-size networks.

    python bench/train_step.py                      # (batch 25, 128 px) and (batch 8, 64 px), fp32
    python bench/train_step.py --configs 25x128 --precisions fp32,bf16 --torch --json bench/results.json
    python bench/train_step.py --configs 8x64 --conditioning tile,adain     # the two generators side by side

--torch times the same steps of the PyTorch reference (models/torch_reference.py, the official architecture,
channels-last, 2 threads, GP in the critic step) in the same run, for ratios that the machine's noise cancels.

Times each step after a warm-up (the first call traces and compiles), reports medians, images/s over the
official schedule (5 critic steps + 1 generator step per 5 batches), achieved GFLOP/s from the analytic
convolution FLOP count in docs (performance.md; the tile generator's, so GFLOP/s are given for it only), the
generator's parameters, and the exported SavedModel's single-image latency.
The machine is shared and noisy: compare medians from one run.
"""
import argparse
import json
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from utils.cli import quiet_tensorflow  # noqa: E402

# Convolution FLOPs per image (a multiply-add = 2), measured analytically (shared/docs/performance.md).
GFLOP_PER_IMAGE = {64: {"critic": 9.40, "generator": 32.40, "g_forward": 5.31},
                   128: {"critic": 37.62, "generator": 129.59, "g_forward": 21.26}}


# Practical convolution peaks on this machine, 2 threads (docs: performance.md, a 3x3 256->256 conv on 25x32x32).
CONV_PEAK_GFLOPS = {"fp32": 215.0, "bf16": 437.0}


def time_calls(fn, repeats, warmup=1):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), times


def bench_steps(batch, size, repeats, precision="fp32", conditioning="tile"):
    import numpy as np
    import tensorflow as tf
    from models.networks import build_networks, count_parameters
    from training.config import TrainConfig
    from training.steps import GANimationSteps
    config = TrainConfig.from_dict(dict(batch=batch, image_size=size, precision=precision, conditioning=conditioning))
    G, D = build_networks(config.net, name_suffix=f"_{batch}x{size}_{precision}_{conditioning}")
    steps = GANimationSteps(G, D, config)
    rng = np.random.default_rng(0)
    real = tf.constant(rng.uniform(-1, 1, (batch, size, size, 3)).astype(np.float32))
    y_src = tf.constant(rng.uniform(0, 1, (batch, 17)).astype(np.float32))
    batch_in = (real, y_src, steps.sample_targets(y_src), steps.sample_alpha(batch))
    critic, critic_all = time_calls(lambda: float(steps.critic_step(*batch_in)["D/total"]), repeats)
    gen, gen_all = time_calls(lambda: float(steps.generator_step(*batch_in)["G/total"]), repeats)
    schedule = 5 * batch / (5 * critic + gen)  # images/s over 5 critic steps + 1 generator step
    flops = GFLOP_PER_IMAGE.get(size) if conditioning == "tile" else None
    row = dict(framework="tensorflow", precision=precision, conditioning=conditioning, batch=batch, image_size=size,
               g_parameters=count_parameters(G), critic_s=critic, generator_s=gen, images_per_s=schedule,
               critic_all=critic_all, generator_all=gen_all)
    if flops:
        row["critic_gflops"] = flops["critic"] * batch / critic
        row["generator_gflops"] = flops["generator"] * batch / gen
        row["generator_fraction_of_peak"] = row["generator_gflops"] / CONV_PEAK_GFLOPS[precision]
    return row, (G, D)


def bench_torch(batch, size, repeats):
    """The same two steps in PyTorch (official architecture; Adam; GP in the critic step)."""
    import torch
    from models.torch_reference import OfficialDiscriminator, OfficialGenerator
    torch.set_num_threads(os.cpu_count())
    torch.manual_seed(0)
    G = OfficialGenerator(size).to(memory_format=torch.channels_last)
    D = OfficialDiscriminator(size).to(memory_format=torch.channels_last)
    opt_g = torch.optim.Adam(G.parameters(), 1e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), 1e-4, betas=(0.5, 0.999))
    real = (torch.rand(batch, 3, size, size) * 2 - 1).contiguous(memory_format=torch.channels_last)
    y_src, y_tgt = torch.rand(batch, 17), torch.rand(batch, 17)

    def generate(x, y):
        color, attention = G(x, y)
        return attention * x + (1 - attention) * color, attention

    def critic():
        with torch.no_grad():
            fake, _ = generate(real, y_tgt)
        d_real, aus_real = D(real)
        d_fake, _ = D(fake)
        alpha = torch.rand(batch, 1, 1, 1)
        x_hat = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
        grad = torch.autograd.grad(D(x_hat)[0].sum(), x_hat, create_graph=True)[0]
        gp = ((grad.flatten(1).pow(2).sum(1) + 1e-12).sqrt() - 1).pow(2).mean()
        loss = d_fake.mean() - d_real.mean() + 10 * gp + 160 * (aus_real - y_src).pow(2).mean()
        opt_d.zero_grad()
        loss.backward()
        opt_d.step()

    def generator():
        fake, a_fake = generate(real, y_tgt)
        rec, a_rec = generate(fake, y_src)
        d_fake, aus_fake = D(fake)
        tv = lambda a: (a[:, :, :, 1:] - a[:, :, :, :-1]).abs().sum() + (a[:, :, 1:] - a[:, :, :-1]).abs().sum()  # noqa: E731
        loss = (-d_fake.mean() + 160 * (aus_fake - y_tgt).pow(2).mean() + 10 * (rec - real).abs().mean()
                + 0.1 * (a_fake.mean() + a_rec.mean()) + 1e-5 * (tv(a_fake) + tv(a_rec)))
        opt_g.zero_grad()
        loss.backward()
        opt_g.step()

    critic_s, critic_all = time_calls(critic, repeats)
    gen_s, gen_all = time_calls(generator, repeats)
    G.eval()
    one = real[:1].clone()
    with torch.no_grad():
        single, _ = time_calls(lambda: G(one, y_src[:1]), repeats * 4, warmup=2)
    return dict(framework="pytorch " + torch.__version__, precision="fp32", batch=batch, image_size=size,
                critic_s=critic_s, generator_s=gen_s, images_per_s=5 * batch / (5 * critic_s + gen_s),
                critic_all=critic_all, generator_all=gen_all, single_image_ms=1000 * single)


def bench_export(G, D, size, repeats, precision="fp32"):
    import numpy as np
    from models.export import LoadedModel, export_saved_model
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "export")
        export_saved_model(G, D, path, {"image_size": size, "precision": precision})
        model = LoadedModel(path)
        one = np.zeros((1, size, size, 3), np.uint8)
        aus = np.zeros((1, 17), np.float32)
        single, _ = time_calls(lambda: model.edit(one, aus), repeats * 4, warmup=2)
        many = np.zeros((16, size, size, 3), np.uint8)
        batched, _ = time_calls(lambda: model.edit(many, np.zeros((16, 17), np.float32)), repeats, warmup=1)
    return dict(single_image_ms=1000 * single, batch16_ms_per_image=1000 * batched / 16)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", default="25x128,8x64", help="BATCHxSIZE list (default: 25x128,8x64)")
    parser.add_argument("--precisions", default="fp32", help="fp32 and/or bf16 (default: fp32)")
    parser.add_argument("--conditioning", default="tile",
                        help="the generator(s): tile and/or adain, e.g. tile,adain (default: tile)")
    parser.add_argument("--torch", action="store_true", help="also time the PyTorch reference (needs torch)")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per step after warm-up (default 3)")
    parser.add_argument("--pipeline", action="store_true",
                        help="also measure the input pipeline (bench/input_pipeline.py: JPEG folder and TFRecords)")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args()
    tf = quiet_tensorflow()
    results = {"tensorflow": tf.__version__, "threads": os.cpu_count(), "steps": [], "export": []}
    for spec in args.configs.split(","):
        batch, size = (int(v) for v in spec.lower().split("x"))
        rows = []
        if args.torch:
            rows.append(bench_torch(batch, size, args.repeats))
            _print(rows[-1])
        for precision in args.precisions.split(","):
            for conditioning in args.conditioning.split(","):
                row, (G, D) = bench_steps(batch, size, args.repeats, precision, conditioning)
                if size == 128:
                    row.update(bench_export(G, D, size, args.repeats, precision))
                rows.append(row)
                _print(rows[-1])
        if args.torch:
            for row in rows[1:]:
                row["speedup_vs_torch"] = row["images_per_s"] / rows[0]["images_per_s"]
                print(f"  {row['precision']} {row['conditioning']}: {row['speedup_vs_torch']:.2f}x the PyTorch "
                      "reference's images/s")
        results["steps"] += rows
    if args.pipeline:
        results["input_pipeline"] = bench_input_pipeline()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


def bench_input_pipeline(n=2000, size=128, batch=25, repeats=3):
    """images/s of the training input pipeline from a JPEG folder and from TFRecord shards."""
    from bench.input_pipeline import bench_pipeline, faces_as_jpegs
    from data.synthetic import make_synthetic_faces
    from data.shards import load_shards, write_shards
    faces = make_synthetic_faces(n // 50, 50, size=size)
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        jpegs = faces_as_jpegs(faces, tmp)
        write_shards(jpegs, os.path.join(tmp, "shards"), 8, size=size)
        for name, source in (("jpeg_folder", jpegs), ("tfrecords", load_shards(os.path.join(tmp, "shards")))):
            out[f"{name}_images_per_s"] = bench_pipeline(source, batch, size, repeats)[0]
            print(f"input pipeline, {name}: {out[f'{name}_images_per_s']:,.0f} images/s", flush=True)
    return out


def _print(row):
    extra = ""
    if "critic_gflops" in row:
        extra += (f"  {row['critic_gflops']:.0f} / {row['generator_gflops']:.0f} GFLOP/s "
                  f"(G {100 * row['generator_fraction_of_peak']:.0f}% of the conv peak)")
    if "single_image_ms" in row:
        extra += f"  single image {row['single_image_ms']:.0f} ms"
    if "batch16_ms_per_image" in row:
        extra += f", batch of 16 {row['batch16_ms_per_image']:.0f} ms/image"
    if "g_parameters" in row:
        extra += f"  G {row['g_parameters']:,} parameters"
    print(f"{row['framework']:>14} {row['precision']} {row.get('conditioning', 'tile'):5} batch {row['batch']:3d} "
          f"{row['image_size']:3d}px  critic "
          f"{row['critic_s']:6.2f} s  generator {row['generator_s']:6.2f} s  {row['images_per_s']:5.2f} img/s (5:1)"
          + extra, flush=True)


if __name__ == "__main__":
    main()
