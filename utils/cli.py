"""What every command line of this project shares: quiet TensorFlow start-up and one-line errors.

Bad input raises data.errors.DataError anywhere below; `run_main` prints `error: <file>: <problem>` and exits
with code 2, with no traceback.
"""
import os
import sys


def quiet_tensorflow():
    """Import TensorFlow (and TensorLayer) without the screenful of C++ start-up messages.

    TF 2.21 prints them before its log level is read, so stderr is pointed at /dev/null for the import and
    the first device query (which prints the CUDA probe). Python exceptions still surface normally.
    Set GANIMATION_TF_VERBOSE=1 to see everything.
    """
    if os.environ.get("GANIMATION_TF_VERBOSE"):
        import tensorflow as tf
        return tf
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow as tf
        import tensorlayer  # noqa: F401  (it logs at import as well)
        tf.config.list_physical_devices("GPU")
        tf.constant(0.0) + 1.0  # initialise the runtime while stderr is quiet
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    tf.get_logger().setLevel("ERROR")
    return tf


def run_main(main):
    """Call main(); turn bad input into one line and exit code 2, Ctrl-C into exit code 130."""
    from data.errors import DataError
    try:
        code = main()
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(code or 0)
