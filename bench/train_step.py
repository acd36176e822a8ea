"""Benchmark: the critic step, the generator step and the export's latency, full-size networks.

    python bench/train_step.py                      # (batch 25, 128 px) and (batch 8, 64 px)
    python bench/train_step.py --configs 25x128 --repeats 5 --json bench/results.json

Times each step after a warm-up (the first call traces and compiles), reports medians, images/s over the
official schedule (5 critic steps + 1 generator step per 5 batches), achieved GFLOP/s from the analytic
convolution FLOP count in docs (performance.md), and the exported SavedModel's single-image latency.
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


def time_calls(fn, repeats, warmup=1):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), times


def bench_steps(batch, size, repeats):
    import numpy as np
    import tensorflow as tf
    from training.config import TrainConfig
    from training.loop import build_networks
    from training.steps import GANimationSteps
    config = TrainConfig(batch=batch, image_size=size)
    G, D = build_networks(config, name_suffix=f"_{batch}x{size}")
    steps = GANimationSteps(G, D, config)
    rng = np.random.default_rng(0)
    real = tf.constant(rng.uniform(-1, 1, (batch, size, size, 3)).astype(np.float32))
    y_src = tf.constant(rng.uniform(0, 1, (batch, 17)).astype(np.float32))
    batch_in = (real, y_src, steps.sample_targets(y_src), steps.sample_alpha(batch))
    critic, critic_all = time_calls(lambda: float(steps.critic_step(*batch_in)["D/total"]), repeats)
    gen, gen_all = time_calls(lambda: float(steps.generator_step(*batch_in)["G/total"]), repeats)
    schedule = 5 * batch / (5 * critic + gen)  # images/s over 5 critic steps + 1 generator step
    flops = GFLOP_PER_IMAGE.get(size)
    row = dict(batch=batch, image_size=size, critic_s=critic, generator_s=gen, images_per_s=schedule,
               critic_all=critic_all, generator_all=gen_all)
    if flops:
        row["critic_gflops"] = flops["critic"] * batch / critic
        row["generator_gflops"] = flops["generator"] * batch / gen
    return row, (G, D)


def bench_export(G, D, size, repeats):
    import numpy as np
    from models.export import LoadedModel, export_saved_model
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "export")
        export_saved_model(G, D, path, {"image_size": size})
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
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per step after warm-up (default 3)")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args()
    tf = quiet_tensorflow()
    results = {"tensorflow": tf.__version__, "threads": os.cpu_count(), "steps": []}
    nets = {}
    for spec in args.configs.split(","):
        batch, size = (int(v) for v in spec.lower().split("x"))
        row, nets[size] = bench_steps(batch, size, args.repeats)
        results["steps"].append(row)
        print(f"batch {batch:3d} {size:3d}px  critic {row['critic_s']:6.2f} s  generator {row['generator_s']:6.2f} s"
              f"  {row['images_per_s']:5.2f} img/s (5:1)" +
              (f"  {row['critic_gflops']:.0f} / {row['generator_gflops']:.0f} GFLOP/s" if "critic_gflops" in row else ""),
              flush=True)
    size = 128 if 128 in nets else max(nets)
    results["export"] = dict(image_size=size, **bench_export(*nets[size], size, args.repeats))
    print(f"export {size}px: single image {results['export']['single_image_ms']:.0f} ms, "
          f"batch of 16 {results['export']['batch16_ms_per_image']:.0f} ms/image")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
