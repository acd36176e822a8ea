"""Benchmark: input-pipeline throughput (images/s) from a folder of JPEGs and from TFRecord shards.

    python bench/input_pipeline.py                       # 2000 synthetic 128-pixel faces, batch 25, 5 runs
    python bench/input_pipeline.py --n 5000 --repeats 7 --json bench/input_pipeline.json

Renders the built-in synthetic faces, writes them as JPEGs (quality 95) and as TFRecord shards, then times full
epochs of data.pipeline.make_dataset (shuffle, decode, flip, batches of fixed shape, as training reads them)
after one warm-up epoch, and reports the median images/s of each. Also times the data check of
data.validate on the JPEG folder. Training needs about 4 images/s on a CPU; the goal for the shards is
1500 images/s, so that the input pipeline is never what a GPU waits for.
"""
import json
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from utils.cli import ArgumentParser, quiet_tensorflow  # noqa: E402


def faces_as_jpegs(source, folder):
    import cv2
    from data.faceset import FaceSet

    paths = []
    for sample_id, image in zip(source.ids, source.images):
        path = os.path.join(folder, sample_id + ".jpg")
        cv2.imwrite(path, cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
        paths.append(path)
    return FaceSet(aus=source.aus, ids=list(source.ids), paths=paths, name=f"JPEG folder {folder}")


def epoch_rate(source, batch, size, epoch):
    """(images per second, images per CPU-second of this process) over one epoch."""
    from data.pipeline import make_dataset

    start, cpu = time.perf_counter(), time.process_time()
    images = batch * sum(1 for _ in make_dataset(source, batch, size, epoch=epoch, seed=0))
    return images / (time.perf_counter() - start), images / (time.process_time() - cpu)


def bench_pipeline(source, batch, size, repeats):
    """Median images/s and median images per CPU-second (what the pipeline costs, less sensitive to other
    processes on a shared machine than the wall clock) over `repeats` epochs after a warm-up one."""
    epoch_rate(source, batch, size, epoch=0)  # warm-up: tracing, thread pools, page cache
    runs = [epoch_rate(source, batch, size, epoch=k + 1) for k in range(repeats)]
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs), runs


def bench_check(paths, repeats):
    from data.dataset import check_images

    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        check_images(paths)
        rates.append(len(paths) / (time.perf_counter() - start))
    return statistics.median(rates), rates


def main():
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=2000, help="synthetic faces (default: 2000)")
    parser.add_argument("--size", type=int, default=128, help="image side (default: 128)")
    parser.add_argument("--batch", type=int, default=25, help="batch size (default: 25)")
    parser.add_argument("--shards", type=int, default=8, help="TFRecord files (default: 8)")
    parser.add_argument("--repeats", type=int, default=5, help="timed epochs per source (default: 5)")
    parser.add_argument("--json", default=None, help="also write the results to this file")
    args = parser.parse_args()
    tf = quiet_tensorflow()
    from data.synthetic import make_synthetic_faces
    from data.shards import load_shards, write_shards

    per_identity = 50
    faces = make_synthetic_faces(max(1, args.n // per_identity), per_identity, size=args.size)
    results = {"n": len(faces), "size": args.size, "batch": args.batch, "cores": os.cpu_count(),
               "tensorflow": tf.__version__}
    with tempfile.TemporaryDirectory() as tmp:
        jpegs = faces_as_jpegs(faces, tmp)
        start = time.perf_counter()
        write_shards(jpegs, os.path.join(tmp, "shards"), args.shards, size=args.size)
        results["write_shards_images_per_s"] = len(faces) / (time.perf_counter() - start)
        shards = load_shards(os.path.join(tmp, "shards"))
        results["check_images_per_s"], results["check_runs"] = bench_check(jpegs.paths, args.repeats)
        for name, source in (("jpeg_folder", jpegs), ("tfrecords", shards)):
            wall, cpu, runs = bench_pipeline(source, args.batch, args.size, args.repeats)
            results[f"{name}_images_per_s"], results[f"{name}_images_per_cpu_s"] = wall, cpu
            results[f"{name}_runs"] = runs
    print(f"{len(faces)} faces of {args.size} px, batch {args.batch}, {os.cpu_count()} cores, "
          f"medians of {args.repeats} epochs:")
    for name, label in (("jpeg_folder", "a JPEG folder"), ("tfrecords", "TFRecords")):
        print(f"  pipeline from {label + ':':15s} {results[f'{name}_images_per_s']:8,.0f} images/s "
              f"({results[f'{name}_images_per_cpu_s']:,.0f} per CPU-second)"
              + ("  (goal: 1,500 images/s)" if name == "tfrecords" else ""))
    print(f"  data check (data.dataset):    {results['check_images_per_s']:8,.0f} images/s")
    print(f"  writing the shards:           {results['write_shards_images_per_s']:8,.0f} images/s (one run)")
    print(f"  (load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=1)


if __name__ == "__main__":
    main()
