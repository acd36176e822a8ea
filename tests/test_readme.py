"""docs/bad-input.md's table "Bad input and what it gets" (linked from the README): every row names tests, and every
test it names exists."""
import os
import re

from conftest import ROOT


def table_rows():
    text = open(os.path.join(ROOT, "docs", "bad-input.md"), encoding="utf-8").read()
    section = text.split("# Bad input and what it gets", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| input")]
    return [[cell.strip() for cell in row.strip("|").split(" | ")] for row in rows]


def test_every_row_of_the_bad_input_table_names_tests_that_exist():
    rows = table_rows()
    assert len(rows) >= 20
    for what, _, tests in rows:
        names = re.findall(r"`([^`]+)`", tests)
        assert names, what
        module = None
        for name in names:  # `file.py::test`, then bare `test`s of the same file, or a whole `file.py`
            if ".py" in name:
                module, _, name = name.partition("::")
                path = os.path.join(ROOT, "tests", module)
                assert os.path.isfile(path), (what, module)
                source = open(path, encoding="utf-8").read()
            if name:
                assert module and re.search(rf"^def {re.escape(name)}\(", source, re.M), (what, module, name)


def test_the_readme_links_the_table_and_the_recipe():
    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    assert "(docs/bad-input.md)" in readme
    recipe = readme.split("\n## Learning to edit: the CPU recipe\n", 1)[1].split("\n## ", 1)[0]
    assert "(docs/learning.md)" in recipe
