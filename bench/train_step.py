"""Benchmark: the training steps and single-image latency, against PyTorch at its best, in one run.

    python bench/train_step.py --configs 25x128,8x64,8x64w32r4 --precisions fp32,bf16 --torch --json results.json
    python bench/train_step.py --configs 8x64w32r4 --precisions bf16 --torch --torch-variants bf16,bf16-compiled
    python bench/train_step.py --configs 8x64 --conditioning tile,adain      # the two generators side by side
    python bench/train_step.py --configs 8x64 --torch --profile              # where the steps' time goes

A config is BATCHxSIZE, then optionally wWIDTH (the first-layer channels of both networks, default 64) and rRES
(residual blocks, default 6): 8x64w32r4 is the CPU recipe's networks (--g-conv-dim 32 --d-conv-dim 32 --n-res 4).

Per config, after a warm-up (the first call traces, compiles, and for PyTorch's compiled variants runs inductor),
medians of --repeats calls: the critic step, the generator step, images/s over the official schedule (5 critic
steps + 1 generator step per 5 batches), achieved GFLOP/s (an analytic count of the convolutions,
`conv_gflop`), the generator's parameters, and single-image inference: our SavedModel's `edit` (uint8 in and
out), and the TFLite files of the fp32 export (models/tflite.py: size, latency with tf.lite.Interpreter on all
threads, largest difference from the SavedModel on random faces and untrained weights).

--torch times, in the same run, the PyTorch reference (models/torch_reference.py, the official architecture and
losses, GP in the critic step) in up to four variants (--torch-variants), all channels-last, all threads, fused
Adam, and real and fake images through D in one call as ours:
  fp32             eager
  fp32-compiled    torch.compile (inductor, dynamic=False); inference with freezing (prepacked weights)
  bf16             eager, under torch.autocast("cpu", dtype=torch.bfloat16)
  bf16-compiled    both
torch.compile cannot build the gradient penalty (AOTAutograd has no double backward, create_graph=True): the
compiled critic step compiles the generator's forward and D's pass over real and fake images, and runs the
penalty's D eagerly; the benchmark tries the compiled penalty first and prints the error it gets.
Each of our rows is compared with PyTorch's fastest variant of the same precision (images/s, generator step,
single image), against the goals of issue #16: images/s >= 1.3x, generator step no slower, single image no slower.

The host's CPU (model, family, flags avx512_bf16 / amx) heads the output and the JSON: bf16 numbers mean
something only where bf16 runs natively. The machine is shared and noisy: compare medians from one run.
"""
import datetime
import gc
import json
import os
import platform
import re
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from utils.cli import ArgumentParser, quiet_tensorflow  # noqa: E402

# Practical convolution peaks on this machine, 2 threads (docs/speed.md: a 3x3 256->256 conv on 25x32x32).
CONV_PEAK_GFLOPS = {"fp32": 215.0, "bf16": 437.0}
TORCH_VARIANTS = ("fp32", "fp32-compiled", "bf16", "bf16-compiled")
GOALS = {"images_per_s": 1.3, "generator_step": 1.0, "single_image": 1.0}  # issue #16
CPU_FLAGS = ("avx512f", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8")


class Config:
    """One benchmark configuration: batch, image size, width of both networks, residual blocks (D: 6 layers)."""

    def __init__(self, spec):
        m = re.fullmatch(r"(\d+)x(\d+)(?:w(\d+))?(?:r(\d+))?", spec.strip().lower())
        if not m:
            raise ValueError(f"config {spec!r}: expected BATCHxSIZE[wWIDTH][rRES], e.g. 25x128 or 8x64w32r4")
        self.batch, self.size = int(m[1]), int(m[2])
        self.width, self.n_res = int(m[3] or 64), int(m[4] or 6)
        self.d_layers = 6

    @property
    def name(self):
        extra = "" if (self.width, self.n_res) == (64, 6) else f"w{self.width}r{self.n_res}"
        return f"{self.batch}x{self.size}{extra}"

    def describe(self):
        return (f"batch {self.batch}, {self.size} px, width {self.width}, {self.n_res} residual blocks")

    def as_dict(self):
        return dict(batch=self.batch, image_size=self.size, width=self.width, n_res=self.n_res, d_layers=self.d_layers)


def conv_gflop(cfg, num_aus=17):
    """Convolution GFLOP per image (a multiply-add = 2) of G's forward, D's forward, the critic step and the
    generator step of the tile generator. A backward pass counts twice its forward: the critic step is G's
    forward + 12 D forwards (real and fake through D and back, 6; the penalty's forward, input gradient and the
    double backward through them, 6), the generator step 6 G forwards (two passes, each forward and backward)
    + 1.5 D forwards (forward and the input gradient, without the first layer's). Within 1% of the counts in
    docs/speed.md (64 px: 5.31 / 0.34 / 9.40 / 32.40; 128 px: 21.26 / 1.37 / 37.62 / 129.59)."""
    s, w = cfg.size, cfg.width

    def conv(out_hw, k, c_in, c_out):
        return 2.0 * out_hw * out_hw * k * k * c_in * c_out

    g = conv(s, 7, 3 + num_aus, w) + conv(s // 2, 4, w, 2 * w) + conv(s // 4, 4, 2 * w, 4 * w)
    g += 2 * cfg.n_res * conv(s // 4, 3, 4 * w, 4 * w)
    g += conv(s // 4, 4, 4 * w, 2 * w) + conv(s // 2, 4, 2 * w, w)  # transposed: input pixels x kernel
    g += conv(s, 7, w, 3) + conv(s, 7, w, 1)
    d, c_in, c_out, hw = 0.0, 3, w, s
    for _ in range(cfg.d_layers):
        hw //= 2
        d += conv(hw, 4, c_in, c_out)
        c_in, c_out = c_out, 2 * c_out
    d += conv(hw, 3, c_in, 1) + 2.0 * hw * hw * c_in * num_aus  # the realness head; the AU head covers the map
    g, d = g / 1e9, d / 1e9
    return {"g_forward": g, "d_forward": d, "critic": g + 12 * d, "generator": 6 * g + 1.5 * d}


def machine_info():
    """The host: CPU model and family, the flags that decide bf16 (avx512_bf16, AMX), cores, versions, date."""
    info = {"cpu_model": platform.processor() or "unknown", "threads": os.cpu_count(), "flags": {},
            "date": datetime.date.today().isoformat(), "python": platform.python_version()}
    try:
        with open("/proc/cpuinfo") as f:
            fields = {}
            for line in f:
                if not line.strip():
                    break  # the first processor is enough
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
        info["cpu_model"] = fields.get("model name", info["cpu_model"])
        info["cpu_vendor"] = fields.get("vendor_id", "")
        info["cpu_family_model"] = f"family {fields.get('cpu family', '?')}, model {fields.get('model', '?')}"
        flags = set(fields.get("flags", "").split())
        info["flags"] = {f: f in flags for f in CPU_FLAGS}
    except OSError:
        pass
    from training.config import native_bf16
    info["bf16_native"], info["bf16_why"] = native_bf16()
    return info


def print_machine(info, tf_version, torch_version):
    flags = ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in info["flags"].items()) or "flags unknown"
    print(f"{info['date']}: {info['cpu_model']} ({info.get('cpu_family_model', '')}, {info.get('cpu_vendor', '')}), "
          f"{info['threads']} threads; {flags}", flush=True)
    print(f"bf16 {'native' if info['bf16_native'] else 'NOT native'}: {info['bf16_why']}; TensorFlow {tf_version}"
          + (f", PyTorch {torch_version}" if torch_version else ""), flush=True)
    if not info["bf16_native"]:
        print("  (bf16 is emulated on this host: its numbers say nothing about bf16 on a host that runs it)")


def time_calls(fn, repeats, warmup=1):
    """(median seconds, all timed calls) of fn after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), times


def _first_call(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


# --- this project (TensorFlow + TensorLayer) ---

def bench_steps(cfg, repeats, precision="fp32", conditioning="tile", profile=False):
    """Our critic and generator steps at cfg. Returns (row, (G, D))."""
    import numpy as np
    import tensorflow as tf
    from models.networks import build_networks, count_parameters
    from training.config import TrainConfig
    from training.steps import GANimationSteps
    config = TrainConfig.from_dict(dict(batch=cfg.batch, image_size=cfg.size, g_conv_dim=cfg.width,
                                        d_conv_dim=cfg.width, n_res=cfg.n_res, d_layers=cfg.d_layers,
                                        precision=precision, conditioning=conditioning))
    G, D = build_networks(config.net, name_suffix=f"_{cfg.name}_{precision}_{conditioning}")
    steps = GANimationSteps(G, D, config)
    rng = np.random.default_rng(0)
    real = tf.constant(rng.uniform(-1, 1, (cfg.batch, cfg.size, cfg.size, 3)).astype(np.float32))
    y_src = tf.constant(rng.uniform(0, 1, (cfg.batch, 17)).astype(np.float32))
    batch_in = (real, y_src, steps.sample_targets(y_src), steps.sample_alpha(cfg.batch))

    def critic_step():
        return float(steps.critic_step(*batch_in)["D/total"])

    def generator_step():
        return float(steps.generator_step(*batch_in)["G/total"])

    first = _first_call(critic_step) + _first_call(generator_step)
    critic, critic_all = time_calls(critic_step, repeats, warmup=0)
    gen, gen_all = time_calls(generator_step, repeats, warmup=0)
    row = dict(framework="tensorflow", variant=precision, precision=precision, conditioning=conditioning,
               config=cfg.name, **cfg.as_dict(), g_parameters=count_parameters(G), critic_s=critic,
               generator_s=gen, images_per_s=_schedule(cfg.batch, critic, gen), first_calls_s=first,
               critic_all=critic_all, generator_all=gen_all)
    if conditioning == "tile":
        _add_gflops(row, cfg)
    if profile:
        row["profile_generator"] = tf_profile(generator_step)
        row["profile_critic"] = tf_profile(critic_step)
    return row, (G, D)


def _schedule(batch, critic_s, generator_s):
    """images/s over 5 critic steps + 1 generator step (5 batches)."""
    return 5 * batch / (5 * critic_s + generator_s)


def _add_gflops(row, cfg):
    flop = conv_gflop(cfg)
    row["critic_gflops"] = flop["critic"] * cfg.batch / row["critic_s"]
    row["generator_gflops"] = flop["generator"] * cfg.batch / row["generator_s"]
    row["generator_fraction_of_peak"] = row["generator_gflops"] / CONV_PEAK_GFLOPS[row["precision"]]


def bench_export(G, D, cfg, repeats, precision="fp32", tflite=False):
    """The SavedModel's single-image and batch-of-16 latency; with tflite, the TFLite files' size, latency and
    largest difference from the SavedModel."""
    import numpy as np
    from models.export import LoadedModel, export_saved_model
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "export")
        export_saved_model(G, D, path, dict(image_size=cfg.size, precision=precision, g_conv_dim=cfg.width,
                                            d_conv_dim=cfg.width, n_res=cfg.n_res, d_layers=cfg.d_layers,
                                            g_norm_affine=True, g_conv_bias=False))
        model = LoadedModel(path)
        one = np.zeros((1, cfg.size, cfg.size, 3), np.uint8)
        aus = np.zeros((1, 17), np.float32)
        out["single_image_ms"] = 1000 * time_calls(lambda: model.edit(one, aus), repeats * 4, warmup=2)[0]
        many = np.zeros((16, cfg.size, cfg.size, 3), np.uint8)
        batched, _ = time_calls(lambda: model.edit(many, np.zeros((16, 17), np.float32)), repeats, warmup=1)
        out["batch16_ms_per_image"] = 1000 * batched / 16
        if tflite:
            out["tflite"] = bench_tflite(path, cfg.size, repeats)
    return out


def bench_tflite(export_dir, size, repeats):
    """{variant: size, single-image latency, largest differences from the SavedModel} for every TFLite variant."""
    import numpy as np
    from models.tflite import VARIANTS, TFLiteEditor, compare, tflite_path, write_tflite
    t = time.perf_counter()
    write_tflite(export_dir, VARIANTS)
    out = {"convert_s": time.perf_counter() - t}
    agreement = compare(export_dir, VARIANTS)
    one, aus = np.zeros((1, size, size, 3), np.uint8), np.zeros((1, 17), np.float32)
    for variant in VARIANTS:
        runner = TFLiteEditor(tflite_path(export_dir, variant), num_threads=os.cpu_count()).runner
        ms = 1000 * time_calls(lambda: runner(images=one, aus=aus), repeats * 4, warmup=2)[0]
        out[variant] = dict(size_mb=os.path.getsize(tflite_path(export_dir, variant)) / 1e6, single_image_ms=ms,
                            **agreement[variant])
    return out


def tf_profile(fn, calls=2, top=10):
    """[(op type, seconds per call, share of the busy time)] of fn, from TensorFlow's profiler (the table that
    TensorBoard's profile tab calls framework_op_stats; read through a private module of TF 2.21)."""
    import glob
    import tensorflow as tf
    try:
        from tensorflow.python.profiler.internal import _pywrap_profiler_plugin as plugin
    except ImportError as e:
        return [(f"profile unavailable: {e}", 0.0, 0.0)]
    with tempfile.TemporaryDirectory() as tmp:
        tf.profiler.experimental.start(tmp)
        for _ in range(calls):
            fn()
        tf.profiler.experimental.stop()
        paths = glob.glob(os.path.join(tmp, "**", "*.xplane.pb"), recursive=True)
        table = json.loads(plugin.xspace_to_tools_data(paths, "framework_op_stats")[0])[0]
    cols = [c["id"] for c in table["cols"]]
    by_type = {}
    for r in table["rows"]:
        v = dict(zip(cols, (c.get("v") for c in r["c"])))
        if v["type"] != "IDLE":
            by_type[v["type"]] = by_type.get(v["type"], 0.0) + v["total_self_time"] / 1e6 / calls
    return _top(by_type, top)


def _top(seconds_by_name, top):
    busy = sum(seconds_by_name.values()) or 1.0
    ranked = sorted(seconds_by_name.items(), key=lambda kv: -kv[1])
    return [(k, s, s / busy) for k, s in ranked[:top]]


# --- the peer: PyTorch ---

def bench_torch(cfg, repeats, variant, profile=False):
    """The same steps in PyTorch (the official architecture and losses, GP in the critic step; see the module
    docstring for the variants). Returns a row."""
    import torch
    from models.torch_reference import OfficialDiscriminator, OfficialGenerator, compose
    precision, compiled = variant.split("-")[0], variant.endswith("-compiled")
    torch.set_num_threads(os.cpu_count())
    torch.manual_seed(0)
    if compiled:
        torch._dynamo.reset()
    b = cfg.batch
    G = OfficialGenerator(cfg.size, cfg.width, cfg.n_res).to(memory_format=torch.channels_last)
    D = OfficialDiscriminator(cfg.size, cfg.width, cfg.d_layers).to(memory_format=torch.channels_last)
    opt_g = torch.optim.Adam(G.parameters(), 1e-4, betas=(0.5, 0.999), fused=True)
    opt_d = torch.optim.Adam(D.parameters(), 1e-4, betas=(0.5, 0.999), fused=True)
    real = (torch.rand(b, 3, cfg.size, cfg.size) * 2 - 1).contiguous(memory_format=torch.channels_last)
    y_src, y_tgt = torch.rand(b, 17), torch.rand(b, 17)

    def autocast():
        return torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16")

    def generate(x, y):
        """(output, attention) in float32, as ours: the heads' outputs are cast, the composition is float32."""
        color, attention = G(x, y)
        attention = attention.float()
        return compose(attention, x, color.float()), attention

    def fake_images(x, y):
        with autocast():
            return generate(x, y)[0]

    def critic_terms(real, fake):
        with autocast():
            realness, aus = D(torch.cat([real, fake]))  # one pass over real and fake images
        d_real, d_fake = realness.float().chunk(2)
        return d_fake.mean() - d_real.mean() + 160 * (aus[:b].float() - y_src).pow(2).mean()

    def gradient_penalty(x_hat):
        with autocast():
            realness = D(x_hat)[0]
        grad = torch.autograd.grad(realness.float().sum(), x_hat, create_graph=True)[0]
        return ((grad.flatten(1).pow(2).sum(1) + 1e-12).sqrt() - 1).pow(2).mean()

    def generator_loss(real, y_src, y_tgt):
        with autocast():
            fake, a_fake = generate(real, y_tgt)
            rec, a_rec = generate(fake, y_src)
            d_fake, aus_fake = D(fake)

        def tv(a):
            return (a[:, :, :, 1:] - a[:, :, :, :-1]).abs().sum() + (a[:, :, 1:] - a[:, :, :-1]).abs().sum()
        return (-d_fake.float().mean() + 160 * (aus_fake.float() - y_tgt).pow(2).mean()
                + 10 * (rec - real).abs().mean() + 0.1 * (a_fake.mean() + a_rec.mean())
                + 1e-5 * (tv(a_fake) + tv(a_rec)))

    notes = []
    penalty = gradient_penalty
    if compiled:
        fake_images = torch.compile(fake_images, dynamic=False)
        critic_terms = torch.compile(critic_terms, dynamic=False)
        generator_loss = torch.compile(generator_loss, dynamic=False)
        penalty = torch.compile(gradient_penalty, dynamic=False)

    def critic():
        with torch.no_grad():
            fake = fake_images(real, y_tgt)
        alpha = torch.rand(b, 1, 1, 1)
        x_hat = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
        loss = critic_terms(real, fake) + 10 * penalty(x_hat)
        opt_d.zero_grad(set_to_none=True)
        loss.backward()
        opt_d.step()

    def generator():
        loss = generator_loss(real, y_src, y_tgt)
        opt_g.zero_grad(set_to_none=True)
        loss.backward()
        opt_g.step()

    t = time.perf_counter()
    try:
        critic()
    except Exception as e:  # torch.compile: no double backward; run the penalty eagerly
        if not compiled:
            raise
        notes.append(f"the gradient penalty runs eagerly: torch.compile failed on it with "
                     f"{type(e).__name__}: {_first_line(e)}")
        penalty = gradient_penalty
        opt_d.zero_grad(set_to_none=True)
        critic()
    first = time.perf_counter() - t
    first += _first_call(generator)
    critic_s, critic_all = time_calls(critic, repeats, warmup=0)
    gen_s, gen_all = time_calls(generator, repeats, warmup=0)
    row = dict(framework="pytorch " + torch.__version__, variant=variant, precision=precision, config=cfg.name,
               **cfg.as_dict(), critic_s=critic_s, generator_s=gen_s, images_per_s=_schedule(b, critic_s, gen_s),
               first_calls_s=first, critic_all=critic_all, generator_all=gen_all, notes=notes)
    _add_gflops(row, cfg)
    if profile:
        row["profile_generator"] = torch_profile(generator)

    G.eval()
    one, y_one = real[:1].clone(), y_src[:1].clone()

    def infer(x, y):
        with autocast():
            return generate(x, y)

    if compiled:
        infer = torch.compile(infer, dynamic=False)
    with torch.inference_mode():
        if compiled:  # freezing: weights become constants, prepacked for oneDNN once (inference only)
            import torch._inductor.config as inductor_config
            with inductor_config.patch(freezing=True):
                row["first_inference_s"] = _first_call(lambda: infer(one, y_one))
        single, _ = time_calls(lambda: infer(one, y_one), repeats * 4, warmup=2)
    row["single_image_ms"] = 1000 * single
    del G, D, opt_g, opt_d
    gc.collect()
    return row


def torch_profile(fn, top=10):
    """[(op, seconds per call, share of the self CPU time)] of one call of fn, from torch.profiler."""
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    seconds = {e.key: e.self_cpu_time_total / 1e6 for e in prof.key_averages()}
    return _top(seconds, top)


def _first_line(e):
    lines = [l for l in str(e).strip().splitlines() if l.strip()]
    return lines[0][:300] if lines else type(e).__name__


# --- comparison and output ---

def compare_with_torch(rows):
    """Each of our rows against PyTorch's fastest variant of the same precision (in place); returns the lines."""
    lines = []
    torch_rows = [r for r in rows if r["framework"].startswith("pytorch")]
    for row in rows:
        same = [r for r in torch_rows if r["precision"] == row["precision"]]
        if row["framework"] != "tensorflow" or not same:
            continue
        fastest = max(same, key=lambda r: r["images_per_s"])
        fastest_g = min(same, key=lambda r: r["generator_s"])
        fastest_1 = min(same, key=lambda r: r["single_image_ms"])
        vs = dict(images_per_s=row["images_per_s"] / fastest["images_per_s"], images_per_s_of=fastest["variant"],
                  generator_step=fastest_g["generator_s"] / row["generator_s"], generator_step_of=fastest_g["variant"])
        if "single_image_ms" in row:
            vs.update(single_image=row["single_image_ms"] / fastest_1["single_image_ms"],
                      single_image_of=fastest_1["variant"])
        row["vs_torch_fastest"] = vs
        met = {k: (vs[k] >= GOALS[k] if k != "single_image" else vs[k] <= GOALS[k]) for k in GOALS if k in vs}
        row["goals_met"] = met
        text = (f"  ours {row['precision']} {row['conditioning']}: images/s {vs['images_per_s']:.2f}x PyTorch's "
                f"fastest {row['precision']} ({vs['images_per_s_of']}) [goal >= 1.3: {_yes(met['images_per_s'])}]; "
                f"generator step {vs['generator_step']:.2f}x as fast as {vs['generator_step_of']}'s "
                f"[goal >= 1: {_yes(met['generator_step'])}]")
        if "single_image" in vs:
            text += (f"; single image {vs['single_image']:.2f}x the time of {vs['single_image_of']}'s "
                     f"[goal <= 1: {_yes(met['single_image'])}]")
        lines.append(text)
    return lines


def _yes(ok):
    return "met" if ok else "MISSED"


def print_row(row):
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
    name = "ours" if row["framework"] == "tensorflow" else "pytorch"
    variant = row["variant"] + (f" {row['conditioning']}" if "conditioning" in row else "")
    print(f"{name:>8} {variant:18} {row['config']:>10}  critic {row['critic_s']:6.2f} s  generator "
          f"{row['generator_s']:6.2f} s  {row['images_per_s']:6.2f} img/s (5:1)  first calls "
          f"{row['first_calls_s']:5.0f} s" + extra, flush=True)
    for note in row.get("notes", []):
        print(f"{'':10}note: {note}", flush=True)
    for key in ("profile_generator", "profile_critic"):
        if key in row:
            print(f"{'':10}{key.split('_')[1]} step, top ops by self time: " + "; ".join(
                f"{op} {1000 * s:.0f} ms ({100 * share:.0f}%)" for op, s, share in row[key]), flush=True)
    for variant, t in row.get("tflite", {}).items():
        if isinstance(t, dict):
            print(f"{'':10}TFLite {variant:7} {t['size_mb']:6.1f} MB  single image {t['single_image_ms']:5.0f} ms  "
                  f"vs the SavedModel: max {t['max_levels']} gray levels (mean {t['mean_levels']:.3f}), attention "
                  f"{t['attention_max']:.1g}", flush=True)


def main():
    parser = ArgumentParser(description=__doc__)
    parser.add_argument("--configs", default="25x128,8x64,8x64w32r4",
                        help="BATCHxSIZE[wWIDTH][rRES] list (default: 25x128,8x64,8x64w32r4)")
    parser.add_argument("--precisions", default="fp32", help="fp32 and/or bf16 (default: fp32)")
    parser.add_argument("--conditioning", default="tile",
                        help="the generator(s): tile and/or adain, e.g. tile,adain (default: tile)")
    parser.add_argument("--torch", action="store_true", help="also time the PyTorch reference (needs torch)")
    parser.add_argument("--torch-variants", default=",".join(TORCH_VARIANTS),
                        help=f"with --torch: which of {', '.join(TORCH_VARIANTS)} (default: all)")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per step after warm-up (default 3)")
    parser.add_argument("--no-tflite", dest="tflite", action="store_false",
                        help="skip the TFLite files of the fp32 export")
    parser.add_argument("--profile", action="store_true",
                        help="also print the top ops of every step (tf.profiler; torch.profiler for PyTorch's)")
    parser.add_argument("--pipeline", action="store_true",
                        help="also measure the input pipeline (bench/input_pipeline.py: JPEG folder and TFRecords)")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args()
    try:
        configs = [Config(spec) for spec in args.configs.split(",")]
    except ValueError as e:
        parser.error(str(e))
    variants = [v for v in args.torch_variants.split(",") if v]
    if any(v not in TORCH_VARIANTS for v in variants):
        parser.error(f"--torch-variants: each of {', '.join(TORCH_VARIANTS)}")
    tf = quiet_tensorflow()
    torch_version = None
    if args.torch:
        import torch
        torch_version = torch.__version__
    info = machine_info()
    print_machine(info, tf.__version__, torch_version)
    results = {"machine": info, "tensorflow": tf.__version__, "torch": torch_version, "threads": os.cpu_count(),
               "configs": [], "steps": []}
    started = time.perf_counter()
    for cfg in configs:
        print(f"--- {cfg.name}: {cfg.describe()}", flush=True)
        rows = []
        for variant in variants if args.torch else []:
            rows.append(bench_torch(cfg, args.repeats, variant, profile=args.profile))
            print_row(rows[-1])
        for precision in args.precisions.split(","):
            for conditioning in args.conditioning.split(","):
                row, (G, D) = bench_steps(cfg, args.repeats, precision, conditioning, profile=args.profile)
                tflite = args.tflite and precision == "fp32" and conditioning == "tile"
                row.update(bench_export(G, D, cfg, args.repeats, precision, tflite=tflite))
                rows.append(row)
                print_row(row)
        lines = compare_with_torch(rows)
        for line in lines:
            print(line, flush=True)
        results["configs"].append(dict(config=cfg.name, **cfg.as_dict(), rows=rows, comparison=lines))
        results["steps"] += rows
    if args.pipeline:
        results["input_pipeline"] = bench_input_pipeline()
    results["wall_s"] = time.perf_counter() - started
    print(f"done in {results['wall_s'] / 60:.1f} min", flush=True)
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


if __name__ == "__main__":
    main()
