"""Benchmark: images/s of train.py itself on a short run, against the training steps alone at the same config.

    python bench/train_run.py                                  # 64 px, width 32, 4 residual blocks, batch 8, 300 steps
    python bench/train_run.py --batch 16 --steps 500 --precision bf16 --log-every 1,10 --json run.json

Runs `train.py` in a new process as a user does (the built-in synthetic faces, --eval-every 0, --no-export, every
other flag at its default: sample grids and checkpoints as usual), once per --log-every value, and reads the
run's own records: log.txt's timestamps and metrics.jsonl's images/s (each line's is the mean since the first
step, so it gives the time of that step). The process's wall time splits into
  start-up   process start to the first step: imports, the synthetic faces, the networks, the checkpoint manager
  warm-up    the first --warmup-steps steps: tracing the critic and generator steps, the input pipeline's start
  steady     the other steps: the loop as it runs, with the input pipeline, logging, and the checkpoint at each
             epoch's end
  end        after the last step: the last sample grid and checkpoint, and the process's exit
Steady state is compared with the steps alone (bench/train_step.py's bench_steps: medians over the 5:1 schedule,
the same batch again and again, timed in this process after the runs). --log-every 1 copies the metrics to the
host and writes them at every step; at the default 10 the loop keeps the steps' scalars as tensors and averages
them every 10 steps only (training/loop.py).
"""
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from utils.cli import ArgumentParser, quiet_tensorflow  # noqa: E402


def run_train(args, log_every, runs_dir):
    """One train.py process. Returns its row: the wall-time split and images/s."""
    name = f"log{log_every}"
    command = [sys.executable, os.path.join(ROOT, "train.py"), "--image-size", str(args.image_size),
               "--g-conv-dim", str(args.width), "--d-conv-dim", str(args.width), "--n-res", str(args.n_res),
               "--batch", str(args.batch), "--precision", args.precision, "--max-steps", str(args.steps),
               "--eval-every", "0", "--no-export", "--log-every", str(log_every), "--runs-dir", runs_dir,
               "--run-name", name] + args.extra.split()
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT)
    started = time.time()
    result = subprocess.run(command, cwd=runs_dir, env=env, capture_output=True, text=True)
    ended = time.time()
    if result.returncode:
        sys.exit(f"train.py failed ({result.returncode}):\n{result.stderr[-3000:]}")
    run_dir = os.path.join(runs_dir, name)
    first_step = _log_time(run_dir, "data: ")  # train() logs this line, then starts its clock
    at = step_times(run_dir, args.batch)  # {step: seconds since the clock started}
    last = max(at)
    warm = min(s for s in at if s >= min(args.warmup_steps, last))
    b = args.batch
    row = dict(log_every=log_every, steps=last, wall_s=ended - started, startup_s=first_step - started,
               warmup_steps=warm, warmup_s=at[warm], end_s=ended - (first_step + at[last]),
               steady_images_per_s=(last - warm) * b / (at[last] - at[warm]) if last > warm else float("nan"),
               train_images_per_s=last * b / at[last], process_images_per_s=last * b / (ended - started),
               precision=_precision(run_dir))
    return row


def step_times(run_dir, batch):
    """{step: seconds from the training clock's start to the end of that step}, from metrics.jsonl."""
    out = {}
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        for line in f:
            m = json.loads(line)
            if "speed/images_per_s" in m:
                out[m["step"]] = m["step"] * batch / m["speed/images_per_s"]
    return out


def _log_time(run_dir, prefix):
    """The time (seconds since the epoch) of the first log.txt line whose message starts with prefix."""
    with open(os.path.join(run_dir, "log.txt")) as f:
        for line in f:
            stamp, message = line[:23], line[24:]
            if message.startswith(prefix):
                return datetime.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()
    raise ValueError(f"{run_dir}/log.txt has no line starting with {prefix!r}")


def _precision(run_dir):
    with open(os.path.join(run_dir, "config.json")) as f:
        config = json.load(f)
    return config["precision"] + (f" ({config['precision_note']})" if config.get("precision_note") else "")


def main():
    parser = ArgumentParser(description=__doc__)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--width", type=int, default=32, help="--g-conv-dim and --d-conv-dim (default 32)")
    parser.add_argument("--n-res", type=int, default=4)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=300, help="critic steps per run (--max-steps; default 300)")
    parser.add_argument("--precision", default="auto", help="fp32, bf16 or auto (default)")
    parser.add_argument("--log-every", default="1,10", help="one run per value (default: 1,10)")
    parser.add_argument("--warmup-steps", type=int, default=10,
                        help="steps counted as warm-up (the first generator step is step 5; default 10)")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per step for the steps alone")
    parser.add_argument("--extra", default="", help="more train.py flags for every run, e.g. \"--g-ema 0.999 --adam "
                        "keras\" (the steps alone are timed without them)")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args()
    tf = quiet_tensorflow()
    from bench.train_step import Config, bench_steps, machine_info, print_machine
    from training.config import native_bf16
    info = machine_info()
    print_machine(info, tf.__version__, None)
    precision = args.precision if args.precision != "auto" else ("bf16" if native_bf16()[0] else "fp32")
    cfg = Config(f"{args.batch}x{args.image_size}w{args.width}r{args.n_res}")
    print(f"train.py, {cfg.describe()}, {args.steps} steps, --precision {args.precision} {args.extra}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as runs_dir:
        for log_every in (int(v) for v in args.log_every.split(",")):
            rows.append(run_train(args, log_every, runs_dir))
            r = rows[-1]
            print(f"  --log-every {log_every:3d}: wall {r['wall_s']:5.1f} s = start-up {r['startup_s']:4.1f} s + "
                  f"warm-up ({r['warmup_steps']} steps) {r['warmup_s']:4.1f} s + steady "
                  f"{r['wall_s'] - r['startup_s'] - r['warmup_s'] - r['end_s']:5.1f} s + end {r['end_s']:4.1f} s; "
                  f"steady {r['steady_images_per_s']:5.1f} img/s, training {r['train_images_per_s']:5.1f}, "
                  f"whole process {r['process_images_per_s']:5.1f}  [{r['precision']}]", flush=True)
    steps_row, _ = bench_steps(cfg, args.repeats, precision)
    alone = steps_row["images_per_s"]
    print(f"  the steps alone ({precision}): critic {steps_row['critic_s']:.3f} s, generator "
          f"{steps_row['generator_s']:.3f} s, {alone:.1f} img/s over the 5:1 schedule", flush=True)
    for r in rows:
        r["steady_vs_steps_alone"] = r["steady_images_per_s"] / alone
        print(f"  --log-every {r['log_every']:3d}: train.py's steady state is {r['steady_vs_steps_alone']:.2f}x the "
              f"steps alone; the whole process {r['process_images_per_s'] / alone:.2f}x", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(machine=info, config=cfg.as_dict(), steps=args.steps, precision=precision,
                           extra=args.extra, runs=rows, steps_alone=steps_row), f, indent=2)


if __name__ == "__main__":
    main()
