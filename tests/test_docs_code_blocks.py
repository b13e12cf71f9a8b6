"""Every code block of README.md and docs/*.md runs as a new user would paste it (issue 18, item 6).

- ```python blocks: executed in order, one namespace per file, in a fresh temporary working
  directory (blocks that write files write there), with matplotlib on its non-interactive backend.
- ```bash / ```sh / ```console blocks: every ``netfield ...`` command in them is parsed by the real
  command-line parser (``netfield.cli.build_parser().parse_args``), so a renamed subcommand or option
  fails here; ``pip`` / ``python -m pytest`` lines are the quick start, run by CI itself.
- The plain ``` block of the README's "Command line" section is a synopsis (``[--resume]``,
  ``{dnn,rnn}``): every subcommand and every ``--option`` it names must exist in that subcommand's
  parser.

Names ``netfield.a.b`` that a python block's comments mention (e.g. an alternative call shown as a
comment) must exist too.

A python block preceded by ``<!-- no-run: reason -->`` is not executed; the reason is printed
(``pytest -rA`` shows it) and must be non-empty. Use it only where a block cannot run as written
(e.g. the full-size reproduction of a figure, which takes minutes; a smaller runnable version must
then sit next to it).
"""

from __future__ import annotations

import importlib
import io
import re
import shlex
import time
import tokenize
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```([A-Za-z0-9_+-]*)[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
NO_RUN = re.compile(r"<!--\s*no-run:(.*?)-->\s*$", re.DOTALL)
SHELL = {"bash", "sh", "shell", "console"}


def blocks(path: Path):
    """(language, code, line number, no-run reason or None) of every fenced block, in order."""
    text = path.read_text(encoding="utf-8")
    for match in FENCE.finditer(text):
        before = text[:match.start()].rstrip("\n")
        marker = NO_RUN.search(before[-400:])
        reason = marker.group(1).strip() if marker and before.endswith("-->") else None
        yield match.group(1).lower(), match.group(2), text.count("\n", 0, match.start()) + 1, reason


def comment_names(code: str) -> list:
    """The dotted ``netfield.x.y`` names in the comments of a python block."""
    comments = [tok.string for tok in tokenize.generate_tokens(io.StringIO(code).readline)
                if tok.type == tokenize.COMMENT]
    return sorted({m for c in comments for m in re.findall(r"\bnetfield(?:\.[A-Za-z_]\w*)+", c)})


def resolve(name: str):
    """The object a dotted name refers to, importing submodules on the way (AttributeError if none)."""
    parts = name.split(".")
    obj = importlib.import_module(parts[0])
    for i, part in enumerate(parts[1:], start=1):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            try:
                obj = importlib.import_module(".".join(parts[:i + 1]))
            except ImportError:
                raise AttributeError(f"{'.'.join(parts[:i])} has no attribute {part!r}") from None
    return obj


def _id(path: Path) -> str:
    return str(path.relative_to(ROOT))


def test_the_files_have_code_blocks():
    # guards the extraction itself: the README has python and shell blocks
    langs = [lang for lang, *_ in blocks(ROOT / "README.md")]
    assert langs.count("python") >= 5 and "bash" in langs


def test_comment_names_are_checked():
    # the check of names in comments can fail: the name the README used to give does not resolve
    code = "x = 1  # netfield.feature.transition.broken_branch(net, x, y)\n# see netfield.gp.NNGPRegressor"
    assert comment_names(code) == ["netfield.feature.transition.broken_branch", "netfield.gp.NNGPRegressor"]
    resolve("netfield.gp.NNGPRegressor")
    resolve("netfield.feature.broken_branch")
    with pytest.raises(AttributeError):
        resolve("netfield.feature.transition.broken_branch")  # netfield.feature.transition is the function


@pytest.mark.parametrize("path", [p for p in FILES if any(b[0] == "python" for b in blocks(p))], ids=_id)
def test_python_blocks_run_in_order(path, tmp_path, monkeypatch, capsys):
    import matplotlib

    matplotlib.use("Agg")
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__main__"}
    report = []
    for lang, code, line, reason in blocks(path):
        if lang != "python":
            continue
        if reason is not None:
            assert reason, f"{_id(path)}:{line}: a no-run marker needs a reason"
            compile(code, f"{_id(path)}:{line}", "exec")  # not run, but it must be valid python
            report.append(f"{_id(path)}:{line}: not run ({reason})")
            continue
        start = time.perf_counter()
        try:
            exec(compile(code, f"{_id(path)}:{line}", "exec"), namespace)  # noqa: S102 - the documented code
        except Exception as err:
            raise AssertionError(f"the python block at {_id(path)} line {line} fails: "
                                 f"{type(err).__name__}: {err}") from err
        report.append(f"{_id(path)}:{line}: ran in {time.perf_counter() - start:.1f} s")
        for name in comment_names(code):
            try:
                resolve(name)
            except (AttributeError, ImportError) as err:
                raise AssertionError(f"the python block at {_id(path)} line {line} names {name} in a comment, "
                                     f"which does not exist ({err})") from None
    with capsys.disabled():
        print("\n" + "\n".join(report))


def _netfield_commands(code: str):
    """Argument lists of the ``netfield ...`` commands in a shell block (after && / ; / |, comments dropped)."""
    code = code.replace("\\\n", " ")
    for line in code.splitlines():
        line = line.strip().removeprefix("$ ")
        for part in re.split(r"&&|\|\||;|\|", line):
            words = shlex.split(part, comments=True)
            if words and words[0] == "netfield":
                yield words[1:]


SHELL_BLOCKS = [(path, code, line) for path in FILES for lang, code, line, _ in blocks(path) if lang in SHELL]


@pytest.mark.parametrize(("path", "code", "line"), SHELL_BLOCKS,
                         ids=[f"{_id(p)}:{line}" for p, _, line in SHELL_BLOCKS])
def test_shell_commands_parse(path, code, line):
    from netfield.cli import build_parser

    commands = list(_netfield_commands(code))
    if not commands:
        assert re.search(r"\b(pip|python)\b", code), f"{_id(path)}:{line}: a shell block with no netfield command"
    for argv in commands:
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as exit_:
            raise AssertionError(f"{_id(path)}:{line}: `netfield {shlex.join(argv)}` does not parse "
                                 f"(exit {exit_.code})") from None
        assert args.command == argv[0]


def _synopsis_blocks():
    out = []
    for path in FILES:
        for lang, code, line, _ in blocks(path):
            if lang == "" and re.search(r"^netfield \w", code, re.MULTILINE):
                out.append((path, code, line))
    return out


def _options(parser) -> set:
    return {opt for action in parser._actions for opt in action.option_strings}


@pytest.mark.parametrize(("path", "code", "line"), _synopsis_blocks(),
                         ids=[f"{_id(p)}:{line}" for p, _, line in _synopsis_blocks()])
def test_command_synopsis_names_real_subcommands_and_options(path, code, line):
    from netfield.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction").choices
    entries = re.split(r"^(?=netfield \w)", code.replace("\\\n", " "), flags=re.MULTILINE)
    checked = 0
    for entry in filter(None, entries):
        usage = entry.splitlines()[0]
        command = usage.split()[1]
        assert command in sub, f"{_id(path)}:{line}: `netfield {command}` is not a subcommand ({sorted(sub)})"
        named = set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", usage))
        missing = named - _options(sub[command])
        assert not missing, f"{_id(path)}:{line}: `netfield {command}` has no option(s) {sorted(missing)}"
        checked += 1
    assert checked >= 1
