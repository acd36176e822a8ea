"""A package's public names, each imported from its module when it is first used (PEP 562).

    __getattr__, __dir__, __all__ = lazy_exports(__name__, {"get_generator": "models.networks", ...})

So `from models import get_generator` works, and importing a package costs nothing by itself: the command lines
check their input before TensorFlow's slow import, whichever package they take a name from.
"""
import importlib
import sys


def lazy_exports(package, names):
    """(__getattr__, __dir__, __all__) for the package `package` whose public `names` map to their modules."""
    def __getattr__(name):
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(names[name]), name)
        setattr(sys.modules[package], name, value)  # the next look-up finds it directly
        return value

    def __dir__():
        return sorted(set(names) | set(vars(sys.modules[package])))

    return __getattr__, __dir__, list(names)
