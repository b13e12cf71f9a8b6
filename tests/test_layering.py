"""Dependencies inside src/netfield point one way (issue 17, item 6):

    gauss <- program <- storage <- meanfield / finite <- capabilities <- experiments / report <- cli

Every module is parsed with ``ast`` (nothing is imported); every import of a netfield module -
absolute ``netfield.x`` or relative ``.`` / ``..``, at module level or inside a function - is checked:

- no import points to a higher layer (the library never imports the command line);
- capabilities (layer 3) do not import each other, except the pairs in ALLOWED (each with its reason);
- inside cli/, a subcommand module imports only cli/common.py, never another subcommand or cli/__init__.

netfield/__init__.py and __main__.py are exempt as importers; importing the package root from anywhere
else counts as importing the top (it imports every capability).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "netfield"

# layer of each top-level module / subpackage of netfield
LAYERS = {
    "_checks": 0, "_deprecation": 0, "_runtime": 0, "_startup": 0, "_version": 0,  # helpers at the bottom
    "distributed": 0,  # where work runs (Dask or this process): below everything that runs work
    "gauss": 0,
    "program": 1, "storage": 1,  # storage: result files (it describes and rebuilds networks)
    "meanfield": 2, "finite": 2,
    "criticality": 3, "feature": 3, "gp": 3, "nlo": 3, "ntk": 3, "training": 3,  # capabilities
    "experiments": 4, "report": 4,
    "cli": 5,
}
CAPABILITY = 3
ROOT_LAYER = 6  # `netfield` itself: it imports the capabilities, so nothing below the top may import it
EXEMPT = {"netfield", "netfield.__main__"}

# (importing module, imported capability): why the capability import is needed
ALLOWED = {
    ("netfield.gp.studies", "netfield.criticality"):
        "the digits study marks the edge of chaos (critical_weight_var) on its accuracy-vs-weight_var curve",
    ("netfield.nlo.study", "netfield.criticality"):
        "the DNN-vs-RNN fluctuation study labels each regime by its chi_1 (ordered / chaotic)",
}


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def is_module(name: str, root: Path) -> bool:
    rel = Path(*name.split(".")[1:]) if "." in name else Path()
    return (root / rel).with_suffix(".py").is_file() or (root / rel / "__init__.py").is_file()


def imports(path: Path, root: Path) -> list:
    """Sorted (line, imported netfield module) of every import in the file, including those inside functions."""
    return sorted(set(_imports(path, root)))


def _imports(path: Path, root: Path):
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == root.name:
                    yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module.split(".")[0] != root.name:
                continue
            for alias in node.names:  # `from . import gp` imports the module netfield.gp
                sub = f"{module}.{alias.name}"
                yield node.lineno, sub if is_module(sub, root) else module


def layer(name: str) -> int | None:
    parts = name.split(".")
    if len(parts) == 1:
        return ROOT_LAYER
    return LAYERS.get(parts[1])


def top(name: str) -> str:
    return ".".join(name.split(".")[:2])


def check(root: Path):
    """(problems, allowed pairs that were used): every import that breaks the layering, as text."""
    problems, used = [], set()
    for path in sorted(root.rglob("*.py")):
        source = module_name(path, root)
        if source in EXEMPT:
            continue
        here = layer(source)
        where = f"{path.relative_to(root.parent)}"
        if here is None:
            problems.append(f"{where}: {top(source)} has no layer; add it to LAYERS in tests/test_layering.py")
            continue
        for line, target in imports(path, root):
            there = layer(target)
            if there is None:
                problems.append(f"{where}:{line}: imports {target}, which has no layer")
            elif there > here:
                problems.append(f"{where}:{line}: {source} (layer {here}) imports {target} (layer {there}): upward")
            elif here == there == CAPABILITY and top(source) != top(target):
                key = next((k for k in ALLOWED if k[0] == source and top(target) == k[1]), None)
                if key is None:
                    problems.append(f"{where}:{line}: capability {top(source)} imports capability {target} "
                                    f"({source}; not in ALLOWED)")
                else:
                    used.add(key)
            if top(source) == f"{root.name}.cli" == top(target) and source != f"{root.name}.cli" \
                    and target != f"{root.name}.cli.common":
                problems.append(f"{where}:{line}: {source} imports {target}: a subcommand module imports only "
                                f"{root.name}.cli.common and the library")
    return problems, used


def test_dependencies_point_one_way():
    assert (SRC / "__init__.py").is_file(), SRC
    problems, _ = check(SRC)
    assert not problems, "imports against the layering:\n" + "\n".join(problems)


def test_every_allowed_capability_import_is_still_needed():
    _, used = check(SRC)
    stale = set(ALLOWED) - used
    assert not stale, f"remove from ALLOWED (no such import any more): {sorted(stale)}"


def _package(tmp_path, files: dict) -> Path:
    root = tmp_path / "netfield"
    for rel, text in {"__init__.py": "", **files}.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        for folder in path.relative_to(root).parents:
            (root / folder / "__init__.py").touch()
        path.write_text(text)
    return root


@pytest.mark.parametrize("files, words", [
    ({"gauss/a.py": "def f():\n    from ..program import b\n", "program/b.py": ""},
     "netfield.gauss.a (layer 0) imports netfield.program.b (layer 1): upward"),
    ({"gauss/a.py": "import netfield.meanfield.k as k\n", "meanfield/k.py": ""}, "imports netfield.meanfield.k"),
    ({"finite/s.py": "from netfield import sample\n"}, "imports netfield (layer 6): upward"),
    ({"nlo/a.py": "from ..cli.common import x\n", "cli/common.py": ""}, "imports netfield.cli.common (layer 5)"),
    ({"gp/a.py": "from .. import feature\n", "feature/__init__.py": ""},
     "capability netfield.gp imports capability netfield.feature"),
    ({"cli/gp.py": "from .nlo import run\n", "cli/nlo.py": ""}, "netfield.cli.gp imports netfield.cli.nlo"),
    ({"cli/gp.py": "from . import common, nlo\n", "cli/common.py": "", "cli/nlo.py": ""},
     "netfield.cli.gp imports netfield.cli.nlo"),
    ({"cli/gp.py": "from netfield.cli import main\n"}, "netfield.cli.gp imports netfield.cli:"),
    ({"shiny/a.py": ""}, "netfield.shiny has no layer"),
])
def test_a_planted_import_against_the_layering_is_found(tmp_path, files, words):
    problems, _ = check(_package(tmp_path, files))
    assert any(words in p for p in problems), problems


def test_imports_that_follow_the_layering_pass(tmp_path):
    root = _package(tmp_path, {
        "gauss/a.py": "from .._checks import c\nfrom . import b\n", "gauss/b.py": "", "_checks.py": "",
        "meanfield/k.py": "from ..gauss import a\nfrom ..program.ir import x\n", "program/ir.py": "",
        "nlo/s.py": "import netfield.meanfield.k\nfrom .._runtime.seeds import s\n", "_runtime/seeds.py": "",
        "cli/__init__.py": "from . import gp\nfrom .common import x\n", "cli/common.py": "",
        "cli/gp.py": "from .common import x\nfrom ..gp import y\n", "gp/__init__.py": "",
    })
    assert check(root) == ([], set())


def test_test_module_basenames_are_unique():
    """The test folders are not packages: pytest imports every test module by its basename, so two
    files named alike (tests/finite/test_ntk.py and tests/meanfield/test_ntk.py) stop the collection."""
    from collections import Counter

    tests = Path(__file__).resolve().parent
    names = Counter(p.name for p in tests.rglob("test_*.py"))
    assert not [name for name, count in names.items() if count > 1]
