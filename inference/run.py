"""What infer.py runs: one photo, a folder of photos, or a photo driven by a video.

Every input is read and checked before TensorFlow starts and before anything is written: images, CSVs,
expression names, the reference face, the driver video, the model folder, the number of output files (at most
--max-outputs, 1000 by default), and (MTCNN, after TensorFlow) the faces. Then the model is loaded once and the
edits are made in batches of --batch-size crops (across photos in a folder, and over the targets of a long --aus
CSV): each batch's files are written as soon as it is done, so memory holds one batch, however many targets.
Each output file is written atomically (temporary file, then rename).

Outputs, in --out, for a source `face.jpg` and a target labelled `happy`:
    face_happy.png              the photo with every chosen face edited and pasted back (or the edited crop)
    face_happy.gif / .mp4       with --animate N: source expression -> target in N frames (and back: --pingpong)
    face_happy_attention.png    --save-attention: the attention mask at the output's size (white keeps the input)
    face_happy_strip.png        --strip: one row per face: input | attention | color | output
    face_face1.png, face_happy_face1.png    --save-crops: the aligned input crop and its edit, per face
    face_<driver>.mp4           with --driver driver.mp4
With --animate, the attention, strip and crops show the full target (the animation's last forward frame).
"""
import os
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from data import images
from data.faces import DEFAULT_MARGIN
from inference.animate import VIDEO_MAX_SIDE, fit_side
from utils.errors import UserError

MAX_OUTPUTS = 1000  # more output files are refused unless --max-outputs raises the limit


@dataclass
class Options:
    out: str = "out"
    choice: object = "all"            # "all" or 1-based face numbers (inference.photo.parse_face_choice)
    detect: object = None             # None: auto, True: always search for faces, False: never (photo.py)
    margin: float = DEFAULT_MARGIN
    min_confidence: float = 0.9
    feather: float = 0.08
    save_attention: bool = False
    save_crops: bool = False
    strip: bool = False
    animate: int = 0                  # frames from source to target; 0 = still images
    pingpong: bool = False
    fps: float = 12.0
    batch_size: int = 16
    progress: bool = True


@dataclass
class Summary:
    images: int = 0
    edited: int = 0
    seconds: float = 0.0
    faces: int = 0
    written: list = field(default_factory=list)
    skipped: list = field(default_factory=list)  # (path, problem)
    whole: list = field(default_factory=list)    # small images without a detected face, edited whole


def list_images(folder):
    """The image files directly in `folder`, sorted by name; UserError when there are none."""
    names = images.list_images(folder)
    if not names:
        raise UserError(folder, f"no images in this folder ({', '.join(images.IMAGE_EXTENSIONS)})")
    return [os.path.join(folder, n) for n in names]


def output_stems(paths):
    """File-name stems for outputs: the source's name without extension (a.jpg and a.png: a_jpg, a_png)."""
    stems = [os.path.splitext(os.path.basename(p))[0] for p in paths]
    clash = {s for s in stems if stems.count(s) > 1}
    return [os.path.basename(p).replace(".", "_") if s in clash else s for p, s in zip(paths, stems)]


def prepare(path, size, options, image=None):
    """Read a photo and find the faces to edit -> inference.photo.Photo (UserError naming `path`)."""
    from data.images import read_image
    from inference.photo import find_faces
    image = read_image(path) if image is None else image
    return find_faces(image, size, options.choice, options.detect, options.margin, options.min_confidence,
                      source=path)


def source_aus(model, photos, rows, rows_path, batch_size=16):
    """y_src for every face of every photo: the --src-aus rows when given, else the AU head's estimate."""
    from inference.edit import estimate_aus
    from inference.targets import source_aus_for
    if rows is not None:
        return [source_aus_for(rows, len(p.faces), rows_path) for p in photos]
    counts = [len(p.faces) for p in photos]
    estimated = estimate_aus(model, np.stack([f.real for p in photos for f in p.faces]), batch_size)
    return np.split(estimated, np.cumsum(counts)[:-1])


def requests(photo, y_tgt, y_src, weights):
    """The (crop, AUs) pairs one photo needs, ordered target, frame, face: (P, S, S, 3), (P, 17).
    y_src None: still images (one frame, the target itself)."""
    real = np.stack([f.real for f in photo.faces])                          # (F, S, S, 3)
    if y_src is None:
        aus = np.repeat(y_tgt[:, None, None, :], len(photo.faces), axis=2)   # (T, 1, F, 17)
    else:
        from inference.animate import interpolate
        aus = np.stack([interpolate(y_src, t, weights) for t in y_tgt])      # (T, K, F, 17)
    n = aus.shape[0] * aus.shape[1]
    return np.tile(real, (n, 1, 1, 1)), aus.reshape(-1, 17)


def render(photo, stem, labels, out, weights, options):
    """Yield (path, kind, payload) for one photo's outputs of the targets `labels`; `out` holds the model's
    outputs shaped (T, K, F, ...). Rendering is lazy, so only one output's frames are in memory at a time."""
    from inference.photo import paste_attention, paste_back, strip
    folder = options.out
    last = 0 if weights is None else int(np.argmax(weights))  # the full target (the last forward frame)
    for t, label in enumerate(labels):
        base = os.path.join(folder, f"{stem}_{label}")
        fakes = out["images"][t]                                              # (K, F, S, S, 3)
        if weights is None:
            yield base + ".png", "png", paste_back(photo, list(fakes[0]), options.feather)
        else:
            frames = [fit_side(paste_back(photo, list(f), options.feather), VIDEO_MAX_SIDE) for f in fakes]
            yield base + ".gif", "gif", frames
            yield base + ".mp4", "mp4", frames
        if options.save_attention:
            yield base + "_attention.png", "png", paste_attention(photo, list(out["attention"][t, last]),
                                                                  options.feather)
        if options.strip:
            rows = [strip(face.real, out["attention"][t, last, f], out["color"][t, last, f], fakes[last, f])
                    for f, face in enumerate(photo.faces)]
            yield base + "_strip.png", "png", np.concatenate(rows, axis=0)
        if options.save_crops:
            for f, face in enumerate(photo.faces):
                yield f"{base}_face{face.number}.png", "png", fakes[last, f]


def write(path, kind, payload, fps):
    from data.images import write_image
    from inference.animate import write_gif, write_mp4
    if kind == "png":
        write_image(path, payload)
    elif kind == "gif":
        write_gif(path, payload, fps)
    else:
        write_mp4(path, payload, fps)


def edit_photos(model, batch, y_tgt, labels, options, rows=None, rows_path=None):
    """Edit a group of (photo, stem) in one series of batches; yield each output (path, kind, payload) as soon as
    its batch is done. The targets are taken a few at a time (about --batch-size crops per model call), so what
    is in memory is one batch of crops and its outputs, however many targets there are."""
    from inference.animate import frame_weights
    from inference.edit import edit_pairs
    photos = [p for p, _ in batch]
    weights = frame_weights(options.animate, options.pingpong) if options.animate else None
    frames = 1 if weights is None else len(weights)
    y_src = [None] * len(photos)
    if options.animate:
        y_src = source_aus(model, photos, rows, rows_path, options.batch_size)
    per_target = frames * sum(len(p.faces) for p in photos)  # crops one target needs for the whole group
    step = max(1, options.batch_size // per_target)
    for first in range(0, len(y_tgt), step):
        chunk = y_tgt[first:first + step]
        pairs = [requests(p, chunk, s, weights) for p, s in zip(photos, y_src)]
        out = edit_pairs(model, np.concatenate([r for r, _ in pairs]), np.concatenate([a for _, a in pairs]),
                         options.batch_size)
        start = 0
        for (photo, stem), (real, _) in zip(batch, pairs):
            if first == 0 and options.save_crops:
                for face in photo.faces:
                    yield os.path.join(options.out, f"{stem}_face{face.number}.png"), "png", face.real
            shape = (len(chunk), frames, len(photo.faces))
            part = {k: v[start:start + len(real)].reshape(shape + v.shape[1:]) for k, v in out.items()}
            start += len(real)
            yield from render(photo, stem, labels[first:first + step], part, weights, options)


def count_outputs(images, targets, options):
    """(files infer.py will write, whether that is a lower bound): per image and target the edit (.png, or .gif
    and .mp4), and with the flags its attention, strip and per-face crops (counted as one face per image)."""
    per_edit = (2 if options.animate else 1) + options.save_attention + options.strip + options.save_crops
    return images * (targets * per_edit + options.save_crops), options.save_crops


def check_outputs(images, targets, options, limit):
    """UserError when more than `limit` files would be written (--max-outputs), naming how many."""
    n, lower_bound = count_outputs(images, targets, options)
    if n > limit:
        what = f"{targets:,} target{'s' * (targets != 1)} x {images:,} image{'s' * (images != 1)}"
        raise UserError("--max-outputs", f"this would write {'at least ' * lower_bound}{n:,} files ({what}) in "
                                         f"{options.out}, more than the limit of {limit:,}; pass --max-outputs "
                                         f"{n} to write them")


# --------------------------------------------------------------------------------------------- command line


def _check_args(args):
    """Flag combinations and values, before anything is read."""
    chosen = [f for f, v in (("--aus", args.aus), ("--expression", args.expression), ("--ref", args.ref))
              if v is not None]
    if args.driver:
        if args.expression or args.ref or args.animate:
            raise UserError("--driver", "drives the face from the video (or its --aus CSV): it does not take "
                                        "--expression, --ref or --animate")
        if args.strip:
            raise UserError("--driver", "writes a video; --strip is for still images and animations")
    elif len(chosen) != 1:
        raise UserError(None, "give the target expression with one of --aus CSV, --expression NAME, "
                              "--ref IMAGE (or a driving video with --driver)"
                        if not chosen else f"give only one of {', '.join(chosen)}")
    if args.animate and args.animate < 2:
        raise UserError("--animate", f"needs at least 2 frames, got {args.animate}")
    if args.pingpong and not args.animate:
        raise UserError("--pingpong", "goes with --animate N")
    if not 0 < args.fps <= 120:
        raise UserError("--fps", f"{args.fps:g} is not a frame rate between 0 and 120")
    if args.batch_size < 1:
        raise UserError("--batch-size", "must be at least 1")
    if args.max_outputs < 1:
        raise UserError("--max-outputs", "must be at least 1")
    if not 0 <= args.margin <= 1:
        raise UserError("--margin", f"{args.margin:g} is outside [0, 1]")
    if args.detect and args.no_detect:
        raise UserError("--detect", "and --no-detect contradict each other")
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise UserError(args.out, "is a file; --out names the output folder")


def options_from(args):
    from inference.photo import parse_face_choice
    detect = False if args.no_detect else True if args.detect else None
    return Options(out=args.out, choice=parse_face_choice(args.face), detect=detect,
                   margin=args.margin, save_attention=args.save_attention, save_crops=args.save_crops,
                   strip=args.strip, animate=args.animate or 0, pingpong=args.pingpong, fps=args.fps,
                   batch_size=args.batch_size, progress=not args.quiet)


def main(args):
    """infer.py's work, from its parsed arguments. Returns the exit code; bad input raises UserError."""
    from data.images import read_image
    from inference import targets as tg
    _check_args(args)
    options = options_from(args)
    folder = os.path.isdir(args.src)
    if folder and args.driver:
        raise UserError("--driver", "takes one --src image, not a folder")
    paths = list_images(args.src) if folder else [args.src]
    image = None if folder else read_image(args.src)
    targets = tg.expression_targets(args.expression, args.intensity) if args.expression else None
    if args.aus and not args.driver:
        targets = tg.csv_targets(args.aus)
    rows = tg.read_source_aus(args.src_aus) if args.src_aus else None
    if rows is not None and folder and len(rows) != 1:
        raise UserError(args.src_aus, f"{len(rows)} rows: for a folder, give one row of source AUs (used for "
                                      "every face), or leave --src-aus out to estimate them")
    ref_image = read_image(args.ref) if args.ref else None
    driver = frame_aus = None
    if args.driver:
        from inference.video import csv_frame_aus, open_driver
        driver = open_driver(args.driver)
        frame_aus = csv_frame_aus(args.aus) if args.aus else None
    else:
        check_outputs(len(paths), 1 if targets is None else len(targets.aus), options, args.max_outputs)
    from inference.edit import load_model, resolve_model_dir
    from models.export_folder import read_metadata
    model_dir = resolve_model_dir(args.model)  # the model folder is checked without TensorFlow too
    size = int(read_metadata(model_dir)["image_size"])

    from utils.cli import quiet_tensorflow
    quiet_tensorflow()
    reference = prepare(args.ref, size, Options(choice=(1,), detect=options.detect, margin=options.margin),
                        ref_image) if args.ref else None
    photo = None if folder else prepare(args.src, size, options, image)
    model = load_model(model_dir)
    if reference is not None:
        _note(args.ref, reference)
        targets = tg.reference_targets(model, reference, args.ref)

    if driver is not None:
        return _drive(model, photo, driver, frame_aus, rows, args, options)
    if not folder:
        _note(args.src, photo)
        for path, kind, payload in edit_photos(model, [(photo, output_stems(paths)[0])], targets.aus,
                                               targets.labels, options, rows, args.src_aus):
            write(path, kind, payload, options.fps)
            print(path)
        return 0
    summary = run_folder(model, paths, targets, options, rows, args.src_aus)
    print(format_summary(summary, options.out))
    if not summary.edited:
        raise UserError(args.src, f"none of its {summary.images} images could be edited")
    return 0


def _note(path, photo):
    if photo.note:
        print(f"note: {path}: {photo.note}", file=sys.stderr)


def _drive(model, photo, driver, frame_aus, rows, args, options):
    from inference.video import reenact
    _note(args.src, photo)
    y_src = source_aus(model, [photo], rows, args.src_aus, options.batch_size)[0]
    stem = output_stems([args.src])[0]
    driver_stem = os.path.splitext(os.path.basename(args.driver))[0]
    out_path = os.path.join(options.out, f"{stem}_{driver_stem}.mp4")
    stats = reenact(model, photo, driver, out_path, y_src, frame_aus, args.aus, options.margin,
                    options.min_confidence, options.batch_size, options.progress, VIDEO_MAX_SIDE)
    print(out_path)
    if options.save_crops:
        from data.images import write_image
        for face in photo.faces:
            path = os.path.join(options.out, f"{stem}_face{face.number}.png")
            write_image(path, face.real)
            print(path)
    print(f"{stats['frames']} frames at {driver.fps:g} fps; {stats['without_face']} without a driver face "
          "(they reuse the last AUs)", file=sys.stderr)
    return 0


def run_folder(model, paths, targets, options, rows=None, rows_path=None):
    """Batch mode: every image of a folder, the model loaded once, crops from several photos per batch.
    Unreadable images and images without a face are skipped and listed in the summary."""
    from data.progress import ProgressBar
    summary = Summary(images=len(paths))
    start = time.time()
    per_photo = len(targets.aus) * (options.animate or 1)
    bar = ProgressBar(len(paths), "editing") if options.progress else None
    group, crops = [], 0

    def flush():
        for path, kind, payload in edit_photos(model, group, targets.aus, targets.labels, options, rows,
                                               rows_path):
            write(path, kind, payload, options.fps)
            summary.written.append(path)
        if bar:
            bar.update(len(group))
        group.clear()

    for path, stem in zip(paths, output_stems(paths)):
        try:
            photo = prepare(path, model.image_size, options)
        except UserError as e:
            summary.skipped.append((path, e.problem.split(";")[0]))
            if bar:
                bar.update()
            continue
        if photo.note:
            summary.whole.append(path)
        summary.edited += 1
        summary.faces += len(photo.faces)
        group.append((photo, stem))
        crops += len(photo.faces) * per_photo
        if crops >= options.batch_size:
            flush()
            crops = 0
    if group:
        flush()
    if bar:
        bar.close()
    summary.seconds = time.time() - start
    return summary


def format_summary(summary, out):
    lines = [f"edited {summary.faces} face{'s' * (summary.faces != 1)} in {summary.edited} of {summary.images} "
             f"images in {summary.seconds:.1f} s: {len(summary.written)} files in {out}"]
    if summary.whole:
        lines.append(f"{len(summary.whole)} small image(s) without a detected face were edited whole, as face "
                     f"crops: {', '.join(os.path.basename(p) for p in summary.whole)}")
    if summary.skipped:
        lines.append(f"skipped {len(summary.skipped)}:")
        lines += [f"  {os.path.basename(p)}: {problem}" for p, problem in summary.skipped]
    return "\n".join(lines)
