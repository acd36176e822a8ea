"""The packages import one way: utils < data < models < losses < evaluation < training < inference < command lines,
and no module imports itself back through others. Every import counts, at the top of a file or inside a function;
only a module's `if __name__ == "__main__":` block is exempt, since that block is a command line. And each package
offers its public names itself (`from models import get_generator`)."""
import ast
import importlib
import os
import subprocess
import sys

import pytest

from conftest import ROOT

LAYERS = ("utils", "data", "models", "losses", "evaluation", "training", "inference")
COMMANDS = len(LAYERS)  # the top layer: train.py, infer.py, evaluate.py, app.py, bench/, docs/


def _modules():
    """{module name: file} of every package module and command-line script."""
    found = {}
    for package in LAYERS + ("bench", "docs"):
        for name in sorted(os.listdir(os.path.join(ROOT, package))):
            if name.endswith(".py"):
                module = package if name == "__init__.py" else f"{package}.{name[:-3]}"
                found[module] = os.path.join(ROOT, package, name)
    for name in sorted(os.listdir(ROOT)):
        if name.endswith(".py"):
            found[name[:-3]] = os.path.join(ROOT, name)
    return found


def _layer(module):
    top = module.split(".")[0]
    return LAYERS.index(top) if top in LAYERS else COMMANDS


def _is_main_block(node):
    test = node.test if isinstance(node, ast.If) else None
    return (isinstance(test, ast.Compare) and isinstance(test.left, ast.Name) and test.left.id == "__name__"
            and any(isinstance(c, ast.Constant) and c.value == "__main__" for c in test.comparators))


def _imports(path, modules):
    """The project modules that the file at `path` imports (outside its __main__ block)."""
    found = set()

    def visit(node):
        if isinstance(node, ast.If) and _is_main_block(node):
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:  # `from data import images` imports the module data.images
                found.add(f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in modules else node.module)
        for child in ast.iter_child_nodes(node):
            visit(child)

    with open(path) as f:
        visit(ast.parse(f.read(), path))
    return {m for m in found if m in modules}


def _graph():
    modules = _modules()
    return {module: _imports(path, modules) - {module} for module, path in modules.items()}


def test_the_packages_import_one_way():
    graph = _graph()
    assert {"data.readers", "models.networks", "training.loop", "inference.cli", "train"} <= set(graph)  # it sees
    upward = sorted(f"{a} imports {b}" for a, imported in graph.items() for b in imported if _layer(b) > _layer(a))
    assert not upward, "imports against the layers (" + " < ".join(LAYERS) + " < command lines):\n" + "\n".join(upward)


def test_no_module_imports_itself_back():
    graph = _graph()
    cycles, done = [], set()

    def walk(module, path):
        for other in sorted(graph[module]):
            if other in path:
                cycles.append(" -> ".join(path[path.index(other):] + [other]))
            elif other not in done:
                walk(other, path + [other])
        done.add(module)

    for module in sorted(graph):
        if module not in done:
            walk(module, [module])
    assert not cycles, "import cycles:\n" + "\n".join(sorted(set(cycles)))


@pytest.mark.parametrize("package", [p for p in LAYERS if p != "losses"])
def test_each_package_offers_its_public_names(package):
    module = importlib.import_module(package)
    assert module.__all__ and all(getattr(module, name) is not None for name in module.__all__)
    assert set(module.__all__) <= set(dir(module))


@pytest.mark.subprocess
def test_importing_the_packages_needs_no_tensorflow():
    """Their names load on first use: a command line takes names from any package and still checks its input
    before TensorFlow's slow import."""
    code = ("import sys; import data, evaluation, inference, models, training, utils; "
            "from models import NetworkConfig; from training import TrainConfig; from data import read_dataset; "
            "print('tensorflow' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "False", result.stderr
