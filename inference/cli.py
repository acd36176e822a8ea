"""The command line of infer.py: one photo, a folder of photos, or a photo driven by a video.

Every input is read and checked before TensorFlow starts and before anything is written: images, CSVs,
expression names, the reference face, the driver video, the model folder, the number of output files (at most
--max-outputs, 1000 by default), and (MTCNN, after TensorFlow) the faces. Then the model is loaded once and the
edits are made in batches of --batch-size crops (across photos in a folder, and over the targets of a long --aus
CSV): each batch's files are written as soon as it is done, so memory holds one batch, however many targets.
The edits and the files' names are inference/outputs.py's (the library the web page uses too).
"""
import os
import sys
import time
from dataclasses import dataclass, field

from data.images import IMAGE_EXTENSIONS, list_images
from inference.animate import VIDEO_MAX_SIDE
from inference.outputs import (Options, count_outputs, edit_photos, source_aus, video_path, write_edit,
                               write_face_crops)
from utils.errors import UserError

MAX_OUTPUTS = 1000  # more output files are refused unless --max-outputs raises the limit


@dataclass
class Summary:
    images: int = 0
    edited: int = 0
    seconds: float = 0.0
    faces: int = 0
    written: list = field(default_factory=list)
    skipped: list = field(default_factory=list)  # (path, problem)
    whole: list = field(default_factory=list)    # small images without a detected face, edited whole


def photos_in(folder):
    """The image files directly in `folder`, sorted by name; UserError when there are none."""
    names = list_images(folder)
    if not names:
        raise UserError(folder, f"no images in this folder ({', '.join(IMAGE_EXTENSIONS)})")
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
    """What argparse cannot say, before anything is read: which flags go together, and the values' ranges
    (infer.py's mutually exclusive groups already took one target: --aus, --expression, --ref or --driver)."""
    if args.driver:
        for flag, given in (("--animate", args.animate), ("--strip", args.strip)):
            if given:
                raise UserError("--driver", f"writes a video at the driver's frame rate; {flag} is for still targets")
    elif args.driver_aus:
        raise UserError("--driver-aus", "goes with --driver VIDEO (the CSV's rows are the driver's frames)")
    if args.animate is not None and args.animate < 2:
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
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise UserError(args.out, "is a file; --out names the output folder")


def options_from(args):
    from inference.photo import parse_face_choice
    return Options(out=args.out, choice=parse_face_choice(args.face), detect=args.detect,
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
    paths = photos_in(args.src) if folder else [args.src]
    image = None if folder else read_image(args.src)
    targets = tg.expression_targets(args.expression, args.intensity) if args.expression else None
    if args.aus:
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
        frame_aus = csv_frame_aus(args.driver_aus) if args.driver_aus else None
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
        stem = output_stems(paths)[0]
        for path in write_face_crops(photo, stem, options.out) if options.save_crops else []:
            print(path)
        for edit in edit_photos(model, [(photo, stem)], targets.aus, targets.labels, options, rows, args.src_aus):
            for path in write_edit(edit, options.out, options.fps):
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
    out_path = video_path(options.out, stem, args.driver)
    stats = reenact(model, photo, driver, out_path, y_src, frame_aus, args.driver_aus, options.margin,
                    options.min_confidence, options.batch_size, options.progress, VIDEO_MAX_SIDE)
    print(out_path)
    for path in write_face_crops(photo, stem, options.out) if options.save_crops else []:
        print(path)
    print(f"{stats['frames']} frames at {driver.fps:g} fps; {stats['without_face']} without a driver face "
          "(they reuse the last AUs)", file=sys.stderr)
    return 0


def run_folder(model, paths, targets, options, rows=None, rows_path=None):
    """Batch mode: every image of a folder, the model loaded once, crops from several photos per batch.
    Unreadable images and images without a face are skipped and listed in the summary."""
    from utils.progress import progress_bar
    summary = Summary(images=len(paths))
    start = time.time()
    per_photo = len(targets.aus) * (options.animate or 1)
    bar = progress_bar(len(paths), "editing", enabled=options.progress)
    group, crops = [], 0

    def flush():
        for photo, stem in group if options.save_crops else []:
            summary.written += write_face_crops(photo, stem, options.out)
        for edit in edit_photos(model, group, targets.aus, targets.labels, options, rows, rows_path):
            summary.written += write_edit(edit, options.out, options.fps)
        bar.update(len(group))
        group.clear()

    for path, stem in zip(paths, output_stems(paths)):
        try:
            photo = prepare(path, model.image_size, options)
        except UserError as e:
            summary.skipped.append((path, e.problem.split(";")[0]))
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
