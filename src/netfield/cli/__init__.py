"""``netfield`` command line: a thin layer over the public API.

Subcommands, one module each: ``kernel`` (mean-field kernel to .npy), ``sample`` (empirical kernels of
sampled finite networks to .npz, resumable), ``converge`` (DNN vs RNN convergence study, resumable),
``phase-diagram`` (:mod:`.criticality`), ``gp``, ``nlo``, ``feature`` (feature-learning theory of muP
networks vs posterior sampling, resumable), ``train`` (infinite-width training dynamics) and ``demo``
(the full report). Each module has ``add_parser(subparsers)`` and ``run(args)`` and imports only :mod:`.common` and the library. Bad input
prints ``netfield: error: <one line>`` to stderr and exits with status 2.
"""

from __future__ import annotations

import argparse
import re
import sys
import warnings

from .. import _startup
from .._version import __version__
from . import converge, criticality, demo, feature, gp, kernel, nlo, sample, train
from .common import (
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    FORMATTER,
    CLIError,
    Parser,
    checkpoint_dir,
    examples,
    one_line,
)

SUBCOMMANDS = (kernel, sample, converge, criticality, gp, nlo, feature, train, demo)  # in the order of --help


def build_parser() -> argparse.ArgumentParser:
    """The ``netfield`` parser with every subcommand registered (each sets ``func``)."""
    parser = Parser(prog="netfield", formatter_class=FORMATTER,
                    description="Field theory of wide neural networks: mean-field kernels, sampled finite "
                                "networks, and the DNN-vs-RNN convergence study.",
                    epilog=examples("""
                         netfield demo                          # the full report in ./netfield-report/
                         netfield kernel --arch rnn --depth 5 --inputs x.npy --out k.npy
                         netfield sample --arch rnn --width 256 --networks 64 --out s.npz
                         netfield converge --weight-vars 0.8,1.5,4 --depth 6 --out conv/
                         netfield gp --data digits --arch rnn --readout last   # NNGP accuracy, log evidence
                         netfield nlo --arch rnn --depth 6 --activation tanh   # 1/n mean shift and fluctuations
                         netfield feature --signal 0.2 1.0 --width 64   # feature learning: theory vs sampling
                         netfield train --data task.npz --times 0,10,inf  # wide network trained by gradient descent
                         netfield <command> --help              # options of one command"""))
    parser.add_argument("--version", action="version", version=f"netfield {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for module in SUBCOMMANDS:
        module.add_parser(sub)
    return parser


def main(argv=None) -> int:
    """Entry point of the ``netfield`` console script; returns the exit status."""
    try:
        return _main(argv)
    finally:  # in the command: a Ctrl-C during the interpreter's shutdown no longer kills it by the signal
        _startup.finished()


def _main(argv) -> int:
    _startup.running()  # a Ctrl-C now raises KeyboardInterrupt, caught below (exit 130 with the hint)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, --version, or a usage error already reported in one line
        return int(exit_.code or 0)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            return args.func(args)
    except KeyboardInterrupt:
        _startup.acknowledge()  # a Ctrl-C caught where Python ignores exceptions is delivered again until here
        if args.command == "kernel":
            kept = (f"finished tiles are kept in {args.out}; run the same command to continue"
                    if args.out.lower().rstrip("/").endswith(".zarr") else "nothing is kept (use --out K.zarr to keep tiles)")
            print(f"\nnetfield: interrupted; {kept}", file=sys.stderr)
        else:
            print(f"\nnetfield: interrupted; finished chunks are kept in {checkpoint_dir(args)}; run the same "
                  f"command with --resume to continue", file=sys.stderr)
        # the command's process ends here, without the interpreter's shutdown: XLA may still be compiling
        # on its threads, and tearing JAX down under them segfaulted (tests/cli/test_cli_kill_resume.py)
        _startup.exit_command(EXIT_INTERRUPTED)
        return EXIT_INTERRUPTED
    except (CLIError, ValueError, TypeError, OSError) as err:  # bad input: one line, no traceback
        text = option_message(one_line(err), _options(parser, args.command))
        if isinstance(err, OSError) and not text.startswith("--"):
            text = _path_option(err, args, text)
        if "derived for chain programs" in text and getattr(args, "arch", None) and not text.startswith("--"):
            text = f"--arch {args.arch}: {text}"  # the theory does not cover the architecture chosen
        print(f"netfield: error: {text}", file=sys.stderr)
        return EXIT_USAGE


def _path_option(err: OSError, args, text: str) -> str:
    """An OS error about a path (a regular file where a folder is needed, no permission) with the option
    whose value that path is, or lies under, in front: '--out '/tmp/f/report': [Errno 20] Not a directory ...'."""
    filename = str(err.filename or "")
    found = [(len(str(v)), k, v) for k, v in vars(args).items()
             if isinstance(v, str) and v and filename.startswith(str(v).rstrip("/"))]
    if not found:
        return text
    _, name, value = max(found)
    return f"--{name.replace('_', '-')} {value!r}: {text}"


# API argument names -> the options that set them (an error of the library names the option the user typed)
API_OPTIONS = {"x": "--inputs", "x1": "--inputs", "x2": "--inputs2", "count": "--digits", "depth": "--depth",
               "steps": "--depth", "width": "--width", "widths": "--widths", "networks": "--networks",
               "chunk_size": "--chunk-size", "seed": "--seed", "activation": "--activation",
               "weight_var": ("--weight-var", "--weight-vars"), "weight_vars": "--weight-vars", "bias_var": "--bias-var", "input_var": "--input-var",
               "readout_var": "--readout-var", "readout_bias_var": "--readout-bias-var", "dtype": "--dtype",
               "readout": "--readout", "preactivations": "--preactivations", "noise": "--noise",
               "method": "--method", "task": "--task", "times": "--times", "learning_rate": "--learning-rate",
               "dynamics": "--dynamics", "parameterization": "--parameterization", "client": "--scheduler",
               "workers": "--workers", "tile": "--tile", "out": "--out"}


def _options(parser, command) -> set:
    sub = next((a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction)), {})
    return {o for a in sub[command]._actions for o in a.option_strings} if command in sub else set()


def option_message(text: str, options) -> str:
    """A library error message with the API argument names it leads with (and x1 / x2) replaced by the
    command's options, where the command has them: 'count must be ...' -> '--digits must be ...'."""
    words = text.split(" ", 1)
    head = words[0].rstrip(":,").split("=", 1)[0]  # 'width must ...' or 'width=1000000: ...'
    candidates = API_OPTIONS.get(head, ())
    option = next((o for o in ((candidates,) if isinstance(candidates, str) else candidates) if o in options), None)
    if option is not None:
        text = option + text[len(head):]
    for name in ("x1", "x2"):
        if API_OPTIONS[name] in options:
            text = re.sub(rf"\b{name}\b", API_OPTIONS[name], text)
    if "--depth" in options:
        text = text.replace("depth/steps", "--depth")
    return text


_default_showwarning = warnings.showwarning


def _show_warning(message, category, filename, lineno, file=None, line=None):
    """Notes of the checkpoint verification as one line (``netfield: note: ...``); other warnings as usual."""
    from .._runtime.checkpoint import ChunkWarning

    if issubclass(category, ChunkWarning):
        print(f"netfield: note: {one_line(message)}", file=sys.stderr)
    else:
        _default_showwarning(message, category, filename, lineno, file, line)


__all__ = ["build_parser", "main", "option_message"]
