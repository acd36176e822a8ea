"""An interactive page on this machine: edit a face with the 17 AU sliders.

  python app.py                          # the newest export under runs/, on http://127.0.0.1:7860
  python app.py --model runs/RUN         # an export folder or a run folder, as infer.py takes
  python app.py --port 8000 --host 0.0.0.0

Upload a photo (or take a built-in synthetic face): the faces are found and aligned as infer.py finds them, and
the sliders start at the AUs the model's AU head estimates on the face. Moving a slider, or clicking an
expression preset, edits the face and pastes it back into the photo; the attention mask is shown beside it
(white keeps the input). "Make the animation" writes a GIF and an MP4 from the face's own (estimated) AUs to the
sliders' expression. Files over 25 MB, images over 50 megapixels and files that are not images are refused with
a message in the page. Nothing leaves the machine: no share link, no analytics, no fonts from the web.
"""
import atexit
import os
import shutil
import signal
import tempfile

from utils.cli import ArgumentParser, run_main

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # before gradio is imported: it reads this at import
os.environ.setdefault("HF_HUB_OFFLINE", "1")

DEFAULT_PORT = 7860
SLIDER_STEP = 0.01
CACHE_HOURS = 1  # uploads and results are deleted from gradio's cache after this long
STRIP_WIDTH = 512  # the face's strip is shown at least this wide
CSS = "#detected img, #edited img, #attention img, #gif img {width: 100%; height: 100%; object-fit: contain;}"


def parse_args(argv=None):
    p = ArgumentParser(description=__doc__)
    m = p.add_argument_group("model")
    m.add_argument("--model", metavar="PATH",
                   help="an export folder or a run folder (default: the newest export under runs/)")
    s = p.add_argument_group("serving")
    s.add_argument("--host", default="127.0.0.1", metavar="ADDRESS",
                   help="address to serve on: 127.0.0.1 is this machine only, 0.0.0.0 the local network")
    s.add_argument("--port", type=int, default=DEFAULT_PORT, metavar="N", help="port, 1-65535")
    return p.parse_args(argv)


def slider_label(au):
    from data.constants import AU_DESCRIPTIONS
    return f"{au} {AU_DESCRIPTIONS[au]}"


def build_app(model, model_name=""):
    """The page (a gradio Blocks) for a loaded model (inference.edit.load_model)."""
    import gradio as gr

    from data.constants import AU_MAX, AU_NAMES
    from utils.errors import UserError
    from inference import interactive as ia
    from inference.expressions import EXPRESSIONS, REFERENCE_INTENSITY, expression_aus

    work = tempfile.mkdtemp(prefix="ganimation-app-")  # animations; gradio serves them from its own cache
    atexit.register(shutil.rmtree, work, ignore_errors=True)  # removed when the app stops

    def values(aus):
        return [round(float(v), 2) for v in aus]

    def edit(session, aus):
        """infer.py's outputs for the page; the face's strip is enlarged (nearest pixel) to be seen."""
        edited, attention, strip = ia.edit(model, session, aus)
        zoom = max(1, STRIP_WIDTH // strip.shape[1])
        return edited, attention, strip.repeat(zoom, axis=0).repeat(zoom, axis=1)

    def opened(session):
        """Opening a photo: state, faces found, face choice, status, the sliders at its AUs, and its edit."""
        numbers = [f.number for f in session.photo.faces]
        face = gr.Radio(choices=numbers, value=numbers[session.face], visible=len(numbers) > 1)
        return [session, ia.draw_faces(session), face, session.describe(), *values(session.source),
                *edit(session, session.source)]

    def failed(error, n_outputs, status_at=3):
        """A bad input: the message in the status line (and a pop-up); every other output stays as it was."""
        gr.Warning(str(error))
        skip = [gr.skip()] * n_outputs
        skip[status_at] = f"**Error:** {error}"
        return skip

    def no_photo(session):
        if session is None:
            raise UserError(None, "open a photo or a built-in face first")

    def on_upload(path, whole):
        """The upload box is emptied again (the status names the file), ready for the next photo."""
        if not path:
            return [gr.skip()] * (len(opening) + 1)
        try:
            name = os.path.basename(path)
            session = ia.open_image(model, ia.read_upload(path, name), name, False if whole else None)
            return opened(session) + [None]
        except UserError as e:
            return failed(e, len(opening)) + [None]

    def on_builtin(number):
        try:
            number = int(number or 0)
            return opened(ia.open_image(model, ia.builtin_face(number, model.image_size), f"built-in face {number}"))
        except UserError as e:
            return failed(e, len(opening))

    def on_face(session, number):
        try:
            no_photo(session)
            return opened(ia.choose_face(session, int(number)))
        except UserError as e:
            return failed(e, len(opening))

    def on_edit(session, *aus):
        if session is None:
            return [gr.skip()] * 3
        return edit(session, aus)

    def on_preset(session, name, intensity, *aus):
        if name == "source":
            aus = aus if session is None else session.source
        else:
            aus = expression_aus(name, float(intensity))
        return [*values(aus), *([gr.skip()] * 3 if session is None else edit(session, aus))]

    def on_animate(session, frames, pingpong, *aus):
        try:
            no_photo(session)
            for old in os.listdir(work):  # gradio has copied earlier animations into its cache
                shutil.rmtree(os.path.join(work, old), ignore_errors=True)
            gif, mp4 = ia.animate(model, session, aus, tempfile.mkdtemp(dir=work), frames=frames, pingpong=pingpong)
            return gif, [gif, mp4], f"{session.describe()}; animation: {int(frames)} frames"
        except UserError as e:
            return failed(e, 3, status_at=2)

    title = "GANimation: edit a face with Action Units"
    with gr.Blocks(title=title, delete_cache=(CACHE_HOURS * 3600, CACHE_HOURS * 3600)) as page:
        session = gr.State(None)
        gr.Markdown(f"## {title}\nModel: `{model_name or getattr(model, 'path', '')}` "
                    f"({model.image_size} px crops). Upload a photo or take a built-in face; the sliders start "
                    "at the AUs the model estimates on the face (0 = absent, 5 = maximal).")
        with gr.Row():
            with gr.Column(scale=2):
                upload = gr.File(label=f"photo (JPEG, PNG, ...; up to {ia.MAX_UPLOAD_MB} MB)", elem_id="upload",
                                 file_count="single", type="filepath", height=150)
                whole = gr.Checkbox(label="whole image: no face detection (an aligned face crop)", value=False,
                                    info="for the next upload", elem_id="whole")
                with gr.Row():
                    number = gr.Number(label=f"built-in face (1-{ia.BUILTIN_FACES})", value=1, precision=0,
                                       minimum=1, maximum=ia.BUILTIN_FACES, elem_id="builtin-number",
                                       min_width=100)
                    builtin = gr.Button("Use a built-in face", elem_id="builtin")
                face = gr.Radio(label="face to edit (1 = the largest)", choices=[], visible=False, elem_id="face")
                status = gr.Markdown("No photo yet.", elem_id="status")
            with gr.Column(scale=3):
                detected = gr.Image(label="faces found", interactive=False, elem_id="detected", format="png",
                                    height=300)
        with gr.Row():
            with gr.Column(scale=3):
                sliders = []
                for row in range(0, len(AU_NAMES), 2):
                    with gr.Row():
                        for au in AU_NAMES[row:row + 2]:
                            sliders.append(gr.Slider(0, AU_MAX, value=0, step=SLIDER_STEP, label=slider_label(au),
                                                     elem_id=f"au-{au}", min_width=150, buttons=[]))
            with gr.Column(scale=4):
                with gr.Row():
                    edited = gr.Image(label="edited", interactive=False, elem_id="edited", format="png",
                                      height=340)
                    attention = gr.Image(label="attention (white keeps the input)", interactive=False,
                                         elem_id="attention", format="png", height=340, image_mode="L")
                strip = gr.Image(label="the face: input | attention | color | output", interactive=False,
                                 elem_id="strip", format="png", height=150)
                gr.Markdown("Expression presets (EMFACS prototypes):")
                with gr.Row():
                    presets = [gr.Button(name, size="sm", elem_id=f"preset-{name}", min_width=60)
                               for name in EXPRESSIONS]
                    presets.append(gr.Button("the face's own AUs", size="sm", elem_id="preset-source", min_width=60))
                intensity = gr.Slider(0, AU_MAX, value=REFERENCE_INTENSITY, step=0.1, label="preset intensity",
                                      elem_id="intensity", buttons=[])
                with gr.Row():
                    frames = gr.Slider(2, ia.MAX_FRAMES, value=12, step=1, label="animation frames",
                                       elem_id="frames", buttons=[])
                    pingpong = gr.Checkbox(label="there and back", value=False, elem_id="pingpong")
                make = gr.Button("Make the animation (GIF + MP4): the face's own AUs -> the sliders",
                                 variant="primary", elem_id="animate")
                with gr.Row():
                    gif = gr.Image(label="animation", interactive=False, elem_id="gif", type="filepath",
                                   height=260)
                    files = gr.File(label="download", file_count="multiple", elem_id="files", interactive=False)

        edits = [edited, attention, strip]
        opening = [session, detected, face, status, *sliders, *edits]
        upload.upload(on_upload, [upload, whole], opening + [upload], concurrency_id="model")
        builtin.click(on_builtin, [number], opening, concurrency_id="model")
        face.input(on_face, [session, face], opening, concurrency_id="model")
        gr.on([s.input for s in sliders], on_edit, [session, *sliders], edits, trigger_mode="always_last",
              concurrency_id="model")
        for button, name in zip(presets, list(EXPRESSIONS) + ["source"]):
            button.click(lambda s, i, *a, _name=name: on_preset(s, _name, i, *a), [session, intensity, *sliders],
                         [*sliders, *edits], concurrency_id="model")
        make.click(on_animate, [session, frames, pingpong, *sliders], [gif, files, status], concurrency_id="model")
    page.queue(default_concurrency_limit=1)
    return page


def launch(page, host="127.0.0.1", port=DEFAULT_PORT, block=True):
    """Serve the page: no share link, no analytics; uploads over the limit are refused by the page. Gradio prints
    nothing (main says where the page is); block=True serves until Ctrl-C or SIGTERM."""
    from inference.interactive import MAX_UPLOAD_MB
    result = page.launch(server_name=host, server_port=port, share=False, inbrowser=False, quiet=True,
                         prevent_thread_lock=True, max_file_size=f"{MAX_UPLOAD_MB}mb", ssr_mode=False, pwa=False,
                         mcp_server=False, footer_links=["settings"], show_error=True, css=CSS)
    if block:
        page.block_thread()  # returns on Ctrl-C, after closing the server
    return result


def where(host, port):
    """Where the page can be opened, for the line app.py prints."""
    if host not in ("0.0.0.0", "::"):
        return f"open http://{'[' + host + ']' if ':' in host else host}:{port}"
    return (f"open http://127.0.0.1:{port} here; reachable from the network at http://{network_address()}:{port} "
            f"(--host {host}: every address of this machine)")


def network_address():
    """This machine's address on its network (the source address of a route out; nothing is sent), or its
    name when it has no route."""
    import socket
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # TEST-NET-1: connecting a UDP socket only picks the route
            return s.getsockname()[0]
    except OSError:
        return socket.gethostname()


def check_port(host, port):
    """UserError when the page cannot be served at host:port (the port is taken, or the address is not ours)."""
    import socket

    from utils.errors import UserError
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host, port))
    except OSError as e:
        raise UserError(f"{host}:{port}", f"cannot serve the page here ({e.strerror or e}); choose another --port "
                                          "or --host") from None


def main(argv=None):
    args = parse_args(argv)
    from utils.errors import UserError
    if not 0 < args.port < 65536:
        raise UserError("--port", f"{args.port} is not a port number")
    check_port(args.host, args.port)  # before the model loads
    from inference.edit import load_model, resolve_model_dir
    model_dir = resolve_model_dir(args.model)  # checked before the slow TensorFlow import
    from utils.cli import quiet_tensorflow
    quiet_tensorflow()
    model = load_model(model_dir)
    page = build_app(model, model_dir)
    signal.signal(signal.SIGTERM, _stop)  # `kill` stops the page as Ctrl-C does (and the temporary files go)
    launch(page, args.host, args.port, block=False)
    print(f"model: {model_dir} ({model.image_size} px); {where(args.host, args.port)} (Ctrl-C stops)", flush=True)
    page.block_thread()
    return 0


def _stop(signum, frame):
    raise KeyboardInterrupt


if __name__ == "__main__":
    run_main(main)
