"""What every layer uses: the one user-error type, the command lines' common ground, files written whole."""
from utils.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "UserError": "utils.errors",
    "run_main": "utils.cli", "interrupted": "utils.cli", "option": "utils.cli", "quiet_tensorflow": "utils.cli",
    "quiet_native_stderr": "utils.cli",
    "atomic_write_bytes": "utils.files", "atomic_write_text": "utils.files", "write_png": "utils.files",
    "replace_folder": "utils.files", "recover_folder": "utils.files",
})
