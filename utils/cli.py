"""What every command line of this project shares: its parser, flags from configuration fields, quiet TensorFlow
start-up and one-line errors.

Bad input raises utils.errors.UserError anywhere below; `run_main` prints `error: <file>: <problem>` and exits
with code 2, with no traceback. A mistake in the flags themselves is one line too (`ArgumentParser`).
"""
import argparse
import contextlib
import dataclasses
import os
import sys
import threading


def option(default, help_text, cli=True):
    """A configuration field that is also a command-line flag, with its --help text (cli=False: recorded in the
    configuration, but not a flag). training/config.py makes the flags from these fields."""
    return dataclasses.field(default=default, metadata={"help": help_text, "cli": cli})


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """--help of every command line: the description as written (its examples and tables), and each flag's help
    followed by "(default: X)", as training/config.py writes it. Nothing is added where there is nothing to show
    (no default, a switch that is off) or where the help says its default itself."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if (not action.option_strings or default is None or default is False or default == argparse.SUPPRESS
                or "default" in text):
            return text
        return text + " (default: %(default)s)"


class ArgumentParser(argparse.ArgumentParser):
    """The parser of every command line: --help as `HelpFormatter` writes it, and a mistake in the flags (an
    unknown flag, a missing or bad value, flags that do not go together) is one line and exit code 2,

        infer.py: error: argument --fps: invalid float value: 'x' (see infer.py --help)

    where argparse's own error() prints the whole usage block first."""

    def __init__(self, *args, formatter_class=HelpFormatter, **kwargs):
        super().__init__(*args, formatter_class=formatter_class, **kwargs)

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


@contextlib.contextmanager
def quiet_stderr():
    """Point the process's stderr (fd 2, where TensorFlow's C++ code writes) at /dev/null for the block.
    Set GANIMATION_TF_VERBOSE=1 to see everything."""
    if os.environ.get("GANIMATION_TF_VERBOSE"):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


_native = {"depth": 0, "saved": None, "devnull": None, "stderr": None}  # quiet_native_stderr's state
_native_lock = threading.Lock()


@contextlib.contextmanager
def quiet_native_stderr():
    """Silence what C libraries write straight to the process's stderr during the block (libpng's
    "libpng error: Not enough image data" from OpenCV's decoder), while Python's own sys.stderr (messages,
    progress bars) still reaches the terminal. Blocks may nest and run in several threads at once: the first
    in redirects, the last out restores. Set GANIMATION_TF_VERBOSE=1 to see everything."""
    if os.environ.get("GANIMATION_TF_VERBOSE"):
        yield
        return
    with _native_lock:
        if _native["depth"] == 0:
            sys.stderr.flush()
            _native["saved"] = os.dup(2)
            _native["devnull"] = os.open(os.devnull, os.O_WRONLY)
            _native["stderr"] = sys.stderr
            sys.stderr = open(_native["saved"], "w", buffering=1, closefd=False,
                              encoding=getattr(sys.stderr, "encoding", None) or "utf-8", errors="backslashreplace")
            os.dup2(_native["devnull"], 2)
        _native["depth"] += 1
    try:
        yield
    finally:
        with _native_lock:
            _native["depth"] -= 1
            if _native["depth"] == 0:
                sys.stderr.flush()
                sys.stderr.close()
                sys.stderr = _native["stderr"]
                os.dup2(_native["saved"], 2)
                os.close(_native["saved"])
                os.close(_native["devnull"])


def quiet_tensorflow(init_runtime=True):
    """Import TensorFlow (and TensorLayer) without the screenful of C++ start-up messages.

    TF 2.21 prints them before its log level is read, so stderr is silenced for the import and the first device
    query (which prints the CUDA probe). Python exceptions still surface normally. init_runtime=False leaves the
    runtime uninitialised, for code that must configure devices or a distribution strategy first.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with quiet_stderr():
        import tensorflow as tf
        if init_runtime:  # importing TensorLayer starts the runtime too (and logs)
            import tensorlayer  # noqa: F401
            tf.config.list_physical_devices("GPU")
            tf.constant(0.0) + 1.0  # initialise the runtime while stderr is quiet
    tf.get_logger().setLevel("ERROR")
    return tf


def interrupted():
    """Say that the command was stopped (Ctrl-C, SIGTERM) and return its exit code, 130."""
    print("interrupted", file=sys.stderr)
    return 130


def run_main(main):
    """Call main(); turn bad input into one line and exit code 2, Ctrl-C into exit code 130."""
    from utils.errors import UserError
    try:
        code = main()
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(interrupted())
    sys.exit(code or 0)
