"""The repository is self-contained (docs/design.md section 2).

A fresh clone must run and explain everything on its own: no tracked file may cite notes that live
outside the repository or a machine-specific directory, no Python file may read an absolute path
outside the repository (system pseudo-files such as /proc are allowed), every ``docs/<name>.md``
that the code cites must exist, and every section or equation cited as ``docs/theory.md X`` /
``docs/design.md section N`` must exist in that note.

The forbidden strings are assembled from pieces so that this file does not contain them itself.
"""

from __future__ import annotations

import ast
import io
import re
import subprocess
import tokenize
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCANNED = ("src", "tests", "docs", "README.md", "scripts", "benchmarks")

FORBIDDEN = (
    "THEORY" + ".md",          # the former external theory notes: cite docs/theory.md
    "DESIGN" + ".md",          # the former external design notes: cite docs/design.md
    "../" + "shared",          # a directory next to the checkout
    "/" + "work" + "/",        # a machine-specific absolute path
)
# absolute paths a program may legitimately read: kernel pseudo-files, not files of some machine
SYSTEM_PREFIXES = ("/proc/", "/sys/", "/dev/")
ABSOLUTE_PATH = re.compile(r"^(?:/[A-Za-z0-9_.~-]|~/|[A-Za-z]:[\\/])")
DOC_CITATION = re.compile(r"\bdocs/([A-Za-z0-9_.-]+?)\.md\b")
THEORY_CITATION = re.compile(r"\bdocs/theory\.md\s+(?:sections?\s+|eq\.\s+)?(\d+(?:\.\d+)?[a-z]?)")
DESIGN_CITATION = re.compile(r"\bdocs/design\.md\s+section\s+(\d+)")


def tracked_text_files() -> dict[str, str]:
    """Path (relative to the repository root) -> text, for every text file under SCANNED that git
    tracks (or would track: new files that are not ignored)."""
    try:
        out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--",
                              *SCANNED], cwd=ROOT, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"needs a git checkout to list the tracked files ({exc})")
    texts = {}
    for name in out.decode().split("\0"):
        path = ROOT / name
        if not name or not path.is_file():
            continue
        data = path.read_bytes()
        if b"\0" in data:  # binary (figures)
            continue
        texts[name] = data.decode("utf-8", errors="replace")
    return texts


def forbidden_mentions(text: str) -> list[tuple[int, str]]:
    """(line number, forbidden string) for every occurrence in ``text``."""
    return [(i, bad) for i, line in enumerate(text.splitlines(), 1) for bad in FORBIDDEN if bad in line]


def absolute_path_literals(source: str) -> list[tuple[int, str]]:
    """(line number, value) of every Python string literal that is an absolute path outside the
    system pseudo-file systems (the way a test or script would read a file of one machine)."""
    found = []
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type != tokenize.STRING:
            continue
        try:
            value = ast.literal_eval(tok.string)
        except (ValueError, SyntaxError):  # f-strings: their constant parts are checked by FORBIDDEN
            continue
        if isinstance(value, str) and ABSOLUTE_PATH.match(value) and not value.startswith(SYSTEM_PREFIXES):
            found.append((tok.start[0], value))
    return found


def headings(note: str) -> set[str]:
    """Section numbers of a note's headings ('## 4. ...', '### 4.1 ...' -> '4', '4.1')."""
    return set(re.findall(r"^#{2,4}\s+(\d+(?:\.\d+)?)\.?\s", note, flags=re.MULTILINE))


def equation_labels(note: str) -> set[str]:
    """Equation labels of a note: '(4.1a)' -> '4.1a'."""
    return set(re.findall(r"\((\d+\.\d+[a-z]?)\)", note))


@pytest.fixture(scope="module")
def texts():
    return tracked_text_files()


def test_the_scan_sees_the_repository(texts):
    assert "README.md" in texts and "docs/theory.md" in texts and "tests/test_self_contained.py" in texts
    assert any(name.startswith("src/netfield/") for name in texts)


def test_no_tracked_file_mentions_anything_outside_the_repository(texts):
    bad = [f"{name}:{line}: {what}" for name, text in texts.items() for line, what in forbidden_mentions(text)]
    assert not bad, "cite docs/ instead of files outside the repository:\n" + "\n".join(bad)


def test_no_python_file_reads_an_absolute_path(texts):
    bad = [f"{name}:{line}: {value!r}" for name, text in texts.items() if name.endswith(".py")
           for line, value in absolute_path_literals(text)]
    assert not bad, "read files relative to the repository (Path(__file__).parent / ...):\n" + "\n".join(bad)


def test_every_cited_doc_exists(texts):
    cited = {(name, m.group(0)) for name, text in texts.items() for m in DOC_CITATION.finditer(text)}
    assert any(name.startswith("src/") for name, _ in cited)
    missing = sorted(f"{name}: {doc}" for name, doc in cited if not (ROOT / doc).is_file())
    assert not missing, "cited notes that do not exist:\n" + "\n".join(missing)


def test_every_cited_section_and_equation_exists(texts):
    theory, design = texts["docs/theory.md"], texts["docs/design.md"]
    known = headings(theory) | equation_labels(theory)
    assert {"1", "2.1", "2.2", "2.3", "3.1", "4.1", "4.2", "4.3", "5", "6", "7", "8", "4.1a", "4.1b"} <= known
    bad = [f"{name}: docs/theory.md {m.group(1)}" for name, text in texts.items()
           for m in THEORY_CITATION.finditer(text) if m.group(1) not in known]
    sections = headings(design)
    bad += [f"{name}: docs/design.md section {m.group(1)}" for name, text in texts.items()
            for m in DESIGN_CITATION.finditer(text) if m.group(1) not in sections]
    assert not bad, "citations of sections / equations that do not exist:\n" + "\n".join(bad)


def test_the_checks_can_fail():
    planted = f"see {FORBIDDEN[0]} 2.1\nREF = '{FORBIDDEN[3]}x/ref.json'\n"
    assert [what for _, what in forbidden_mentions(planted)] == [FORBIDDEN[0], FORBIDDEN[3]]
    data, home = "/" + "data/ref.json", "~" + "/" + "x"   # in pieces, so that this file stays clean
    source = f'from pathlib import Path\nA = Path("{data}")\nB = open("/proc/cpuinfo")\nC = "{home}"\n'
    assert absolute_path_literals(source) == [(2, data), (4, home)]
    assert "9.9" not in headings("## 9.1 x\n") | equation_labels("(9.9 x)")
