"""Benchmark: editing faces in photos at 128 x 128, full-size networks.

    python bench/infer_photos.py                         # an untrained full-size export (timing is the same)
    python bench/infer_photos.py --model runs/RUN --photos 100 --repeats 20 --json bench/infer.json

1. Warm per-face latency on skimage's astronaut (512 x 512, one face), each stage timed separately after a
   warm-up: detection (MTCNN), alignment (the crop), edit (the generator on one crop, batch 1) and paste-back.
2. A folder of N photos (640 x 480 JPEGs: the astronaut and synthetic faces at various sizes and places, 1-2
   faces each, a few without a face), one target each: the wall time of `infer.py --src DIR` as a user runs it
   (a new process: TensorFlow start-up and the model load included), and of the same batch run in-process with
   the model already loaded.
Medians are reported; the machine is shared and noisy, so compare numbers from one run.
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench.train_step import time_calls  # noqa: E402
from utils.cli import ArgumentParser, quiet_tensorflow  # noqa: E402


def make_export(folder, size=128):
    """An untrained full-size export (the paper's widths), when no --model is given."""
    from models.export import export_saved_model
    from models.config import NetworkConfig
    from models.networks import build_networks
    net = NetworkConfig(image_size=size)
    G, D = build_networks(net, name_suffix="_bench")
    path = os.path.join(folder, "export")
    export_saved_model(G, D, path, {"image_size": size, "g_conv_dim": net.g_conv_dim, "n_res": net.n_res,
                                    "conditioning": "tile"})
    return path


def make_photos(folder, n, seed=0):
    """n 640 x 480 photos: about 60% the astronaut (scaled, shifted, flipped), 30% one or two synthetic faces,
    10% no face."""
    import cv2
    import numpy as np
    import skimage.data
    from data.synthetic import render_face
    rng = np.random.default_rng(seed)
    astronaut = skimage.data.astronaut()
    os.makedirs(folder, exist_ok=True)
    for k in range(n):
        yy, xx = np.mgrid[0:480, 0:640]
        tint = rng.uniform(40, 200, 3)
        image = (tint + 40 * np.stack([xx / 640, yy / 480, 1 - xx / 640], -1)).clip(0, 255).astype(np.uint8)
        kind = k % 10
        if kind < 6:
            side = int(rng.integers(300, 480))
            face = cv2.resize(astronaut, (side, side), interpolation=cv2.INTER_AREA)
            face = face[:, ::-1] if rng.random() < 0.5 else face
            x, y = int(rng.integers(0, 640 - side + 1)), int(rng.integers(0, 480 - side + 1))
            image[y:y + side, x:x + side] = face
        elif kind < 9:
            for j in range(1 + kind % 2):
                side = int(rng.integers(96, 160))
                x, y = 40 + j * 300 + int(rng.integers(0, 100)), int(rng.integers(0, 480 - side))
                image[y:y + side, x:x + side] = render_face(int(rng.integers(0, 1000)), np.zeros(17), side)
        cv2.imwrite(os.path.join(folder, f"photo_{k:03d}.jpg"), image[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 92])
    return folder


def bench_stages(model, repeats):
    import numpy as np
    import skimage.data
    from data.faces import align_face, detect_faces, paste_face
    photo = np.ascontiguousarray(skimage.data.astronaut())
    size = model.image_size
    face = detect_faces(photo)[0]
    crop, M = align_face(photo, face, size)
    aus = np.zeros((1, 17), np.float32)
    aus[0, [4, 8]] = 3.5  # happy-ish
    edited = model.edit(crop[None], aus)["images"][0]
    stages = {
        "detect_ms": lambda: detect_faces(photo),
        "align_ms": lambda: align_face(photo, face, size),
        "edit_ms": lambda: model.edit(crop[None], aus),
        "paste_ms": lambda: paste_face(photo, edited, M),
    }
    result = {}
    for name, fn in stages.items():
        median, times = time_calls(fn, repeats, warmup=2)
        result[name] = 1000 * median
        result[name.replace("_ms", "_all_ms")] = [round(1000 * t, 2) for t in times]
    result["per_face_ms"] = sum(result[k] for k in ("detect_ms", "align_ms", "edit_ms", "paste_ms"))
    return result


def bench_folder(model, export, folder, out, repeats):
    from inference.cli import photos_in, run_folder
    from inference.outputs import Options
    from inference.targets import expression_targets
    paths = photos_in(folder)
    targets = expression_targets("happy", 3.5)
    walls = []
    for r in range(repeats):
        t = time.perf_counter()
        summary = run_folder(model, paths, targets, Options(out=os.path.join(out, f"in_process_{r}"),
                                                            progress=False))
        walls.append(time.perf_counter() - t)
    t = time.perf_counter()
    env = dict(os.environ, PYTHONPATH=ROOT)
    result = subprocess.run([sys.executable, os.path.join(ROOT, "infer.py"), "--src", folder, "--expression",
                             "happy", "--model", export, "--out", os.path.join(out, "cli"), "--quiet"],
                            env=env, capture_output=True, text=True)
    cli = time.perf_counter() - t
    if result.returncode != 0:
        raise SystemExit(f"infer.py failed: {result.stderr}")
    return {"photos": len(paths), "faces": summary.faces, "edited_photos": summary.edited,
            "skipped": len(summary.skipped), "in_process_s": statistics.median(walls),
            "in_process_all_s": [round(w, 2) for w in walls], "cli_s": cli,
            "cli_summary": result.stdout.strip().splitlines()[0]}


def main():
    parser = ArgumentParser(description=__doc__)
    parser.add_argument("--model", help="an export or run folder (default: an untrained full-size 128 px export)")
    parser.add_argument("--photos", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=20, help="timed calls per stage")
    parser.add_argument("--folder-repeats", type=int, default=1, help="in-process runs over the folder")
    parser.add_argument("--json", help="also write the numbers here")
    args = parser.parse_args()
    quiet_tensorflow()
    import tensorflow as tf
    from inference.edit import load_model, resolve_model_dir
    with tempfile.TemporaryDirectory() as tmp:
        export = resolve_model_dir(args.model) if args.model else make_export(tmp)
        model = load_model(export)
        stages = bench_stages(model, args.repeats)
        print(f"per face at {model.image_size} px (medians of {args.repeats}, warm): detection "
              f"{stages['detect_ms']:.0f} ms, alignment {stages['align_ms']:.1f} ms, edit {stages['edit_ms']:.0f} ms, "
              f"paste-back {stages['paste_ms']:.1f} ms; total {stages['per_face_ms']:.0f} ms")
        folder = make_photos(os.path.join(tmp, "photos"), args.photos)
        runs = bench_folder(model, export, folder, os.path.join(tmp, "out"), args.folder_repeats)
        print(f"folder of {runs['photos']} photos ({runs['faces']} faces, {runs['skipped']} without a face): "
              f"infer.py {runs['cli_s']:.1f} s wall (start-up and model load included); in-process "
              f"{runs['in_process_s']:.1f} s = {1000 * runs['in_process_s'] / runs['photos']:.0f} ms per photo")
    info = {"image_size": model.image_size, "tensorflow": tf.__version__, "cpus": os.cpu_count(),
            "model": args.model or "untrained full-size export", **stages, **runs}
    if args.json:
        from utils.files import atomic_write_text
        atomic_write_text(args.json, json.dumps(info, indent=2))
    return info


if __name__ == "__main__":
    main()
