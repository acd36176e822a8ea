"""The command lines' flags, parsed in-process: a mistake is one line on stderr and exit code 2 (utils.cli's
ArgumentParser, which every command line uses), and --help has its sections."""
import os

import pytest

from conftest import ROOT


def flag_error(parse, argv, capsys):
    """The one line that parse(argv) prints before it exits with code 2."""
    with pytest.raises(SystemExit) as exit_info:
        parse(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2, err
    assert len(err.strip().splitlines()) == 1, err
    return err.strip()


def parser_of(name):
    """What parses a command line's arguments, by module."""
    import app
    import evaluate
    import infer
    import train
    from data import prepare, validate
    from models import tflite
    from training import import_torch
    return {"train": train.parse_args, "train.main": train.main, "infer": infer.parse_args, "app": app.parse_args,
            "evaluate": evaluate.parse_args, "convert_torch": import_torch.parse_args, "data.prepare": prepare.main,
            "data.validate": validate.main, "models.tflite": tflite.main}[name]


@pytest.mark.parametrize("name, argv, message", [
    ("train", ["--bogus"], "unrecognized arguments: --bogus"),
    ("train", ["--epochs", "many"], "argument --epochs: invalid int value: 'many'"),
    ("train.main", ["--export-only"], "--export-only needs --resume RUN_DIR"),  # train.py's own check
    ("infer", ["--src", "a.jpg"], "one of the arguments --aus --expression --ref --driver is required"),
    ("infer", ["--src", "a.jpg", "--expression", "happy", "--fps", "x"], "argument --fps: invalid float value: 'x'"),
    ("app", ["--port", "http"], "argument --port: invalid int value: 'http'"),
    ("evaluate", [], "the following arguments are required: --model"),
    ("convert_torch", ["--gen", "G.pth", "--variant", "pytorch", "--out", "run"],
     "argument --variant: invalid choice: 'pytorch'"),
    ("data.prepare", ["--size"], "argument --size: expected one argument"),
    ("data.validate", ["data", "--bogus"], "unrecognized arguments: --bogus"),
    ("models.tflite", [], "the following arguments are required: export"),
])
def test_a_bad_flag_is_one_line_and_exit_code_2(capsys, name, argv, message):
    line = flag_error(parser_of(name), argv, capsys)
    prog = line.split(": error: ")[0]
    assert line.startswith(f"{prog}: error: {message}") and line.endswith(f" (see {prog} --help)")


def test_every_command_line_uses_the_one_line_parser():
    found = []
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d not in ("tests", "__pycache__")]
        for name in files:
            path = os.path.join(folder, name)
            if name.endswith(".py") and path != os.path.join(ROOT, "utils", "cli.py"):
                with open(path, encoding="utf-8") as f:
                    if "argparse.ArgumentParser(" in f.read():
                        found.append(os.path.relpath(path, ROOT))
    assert found == [], "use utils.cli.ArgumentParser (one-line errors) in " + ", ".join(found)


def test_convert_torch_help_has_sections(capsys):
    from training.import_torch import parse_args
    with pytest.raises(SystemExit) as exit_info:
        parse_args(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert text.index("checkpoints (PyTorch state dicts, read with weights_only=True):") < text.index("output:")
    flat = " ".join(text.split())
    assert "--variant {official,replicate}" in flat and "--out RUN_DIR the run directory to write" in flat
    assert "--image-size N face crop size (default: read from the discriminator, else 128)" in flat
