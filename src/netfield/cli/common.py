"""Shared pieces of the ``netfield`` subcommands: argument types and groups, the network and inputs
built from them, output-file checks, and the one-line error reporting of :func:`netfield.cli.main`.

Bad input raises :class:`CLIError`, ``ValueError``, ``TypeError`` or ``OSError``; ``main`` prints it as
``netfield: error: <one line>`` (:func:`one_line`) and exits with status :data:`EXIT_USAGE`. Every
subcommand module imports this module and the library only, never another subcommand module.
"""

from __future__ import annotations

import argparse
import os
import textwrap
from pathlib import Path

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
FORMATTER = argparse.RawDescriptionHelpFormatter


class CLIError(Exception):
    """A problem with the user's input, reported as one line."""


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line instead of usage + message
        self.exit(EXIT_USAGE, f"netfield: error: {message} (see '{self.prog} --help')\n")


def one_line(err: BaseException) -> str:
    """The message of an error on one line (its type name when it has none)."""
    text = " ".join(str(err).split()) or type(err).__name__
    if isinstance(err, KeyError):
        text = text.strip("'\"")
    return text


def examples(text: str) -> str:
    """An ``examples:`` epilog from an indented block of command lines."""
    return "examples:\n" + textwrap.indent(textwrap.dedent(text).strip(), "  ")


def int_list(text: str) -> tuple:
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def float_list(text: str) -> tuple:
    try:
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def add_prior(p, *, weight_var=True, bias_var=0.0, depth=3, arch_defaults=False):
    """The ``network`` option group: activation, depth and the variances of a network prior.

    With ``arch_defaults`` (commands with ``--arch``, whose network :func:`network` builds) the
    activation and variances default to None: the builder's own defaults (``netfield.<arch>``;
    e.g. the GRU's bias_var 1, the LSTM's tanh, the transformer's relu), the same as the API's.
    Otherwise they are the numbers of the command's API function (erf, variances 1, ``bias_var``).
    """
    g = p.add_argument_group("network")
    own = "the architecture's own, as netfield.<arch>(...)"

    def default(value, text=None):
        return (None, own) if arch_defaults else (value, text or "%(default)s")

    act, act_text = default("erf")
    g.add_argument("--activation", default=act, help=f"activation name: erf, relu, tanh, ... (default: {act_text})")
    g.add_argument("--depth", "--steps", dest="depth", type=int, default=depth,
                   help="layers (DNN) = time steps (RNN) = blocks (default: %(default)s)")
    variances = (("weight", "weight variance", 1.0),) if weight_var else ()
    variances += (("bias", "bias variance", bias_var), ("input", "input-weight variance", 1.0),
                  ("readout", "readout variance", 1.0), ("readout-bias", "readout bias variance", 0.0))
    for name, text, value in variances:
        value, shown = default(value)
        g.add_argument(f"--{name}-var", type=float, default=value, help=f"{text} (default: {shown})")
    return g


def add_inputs(p, name="--inputs"):
    """``--inputs FILE`` (with ``--key``) or ``--digits N`` scikit-learn digit images."""
    p.add_argument(name, metavar="FILE", help="inputs (N, d) or (N, T, d) from .npy, .npz or .csv (N rows, d columns); "
                   "default: --digits standardised digit images from scikit-learn")
    p.add_argument("--key", help="array name inside an .npz holding several arrays")
    p.add_argument("--digits", type=int, default=8, help="number of digit images when no --inputs (default: 8)")


ARCHITECTURES = ("dnn", "rnn", "gru", "lstm", "transformer", "conv", "batchnorm_mlp")


def add_arch(p, default: str):
    """``--arch``: the builder of the network (every architecture netfield has)."""
    p.add_argument("--arch", choices=ARCHITECTURES, default=default,
                   help=f"architecture; --depth is its layers / steps / blocks (default: {default})")


def network(args, architecture, weight_var=None):
    """The network of ``--arch`` and the :func:`add_prior` options (``weight_var`` overrides
    ``--weight-var``): the builder netfield.<arch>(depth, activation, variances...); options left at
    None keep the builder's defaults."""
    import netfield.program as builders

    build = getattr(builders, architecture)
    given = {"activation": args.activation, "weight_var": args.weight_var if weight_var is None else weight_var,
             "bias_var": args.bias_var, "input_var": args.input_var, "readout_var": args.readout_var,
             "readout_bias_var": args.readout_bias_var}
    return build(args.depth, **{k: v for k, v in given.items() if v is not None})


def inputs(args, path=None, option="--inputs"):
    """The inputs of the :func:`add_inputs` options (``path`` instead of ``--inputs``, given as ``option``)."""
    from ..experiments.data import digits_inputs

    path = args.inputs if path is None else path
    if path:
        return input_file(path, getattr(args, "key", None), option)
    return digits_inputs(args.digits).x


def input_file(path, key, option: str):
    """:func:`netfield.experiments.data.load_inputs` with its errors naming ``option`` (or ``--key``)."""
    from ..experiments.data import load_inputs

    try:
        return load_inputs(path, key)
    except (ValueError, TypeError, FileNotFoundError) as err:
        named = "--key" if key is not None and "has no array" in str(err) else option
        raise type(err)(f"{named}: {one_line(err)}") from None


def out_file(path: str, suffix: str) -> Path:
    """``--out`` ending in ``suffix`` in an existing folder (else CLIError)."""
    p = Path(path)
    if p.suffix.lower() != suffix:
        raise CLIError(f"--out must end in {suffix}, got {path!r}")
    folder = p.parent if str(p.parent) else Path(".")
    if not folder.exists():
        raise CLIError(f"--out directory {str(folder)!r} does not exist")
    if not folder.is_dir():
        raise CLIError(f"--out {path!r}: {str(folder)!r} is a file, not a folder")
    if p.is_dir():
        raise CLIError(f"--out {path!r} is a folder; give a {suffix} file name")
    return p


def check_output_file(path: str, option: str, extensions) -> None:
    """An output path for a CLI option: one of ``extensions`` and an existing folder (else ValueError)."""
    ext = os.path.splitext(path)[1].lower()
    if ext not in extensions:
        raise ValueError(f"{option} must end in one of {', '.join(extensions)}, got {path!r}")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ValueError(f"{option}: the folder {folder!r} does not exist")


def _workers(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1 (worker processes), got {value}")
    return value


def add_cluster(p):
    """``--scheduler`` / ``--workers``: where the tasks of a heavy command run (docs/distributed.md)."""
    g = p.add_argument_group("where it runs (Dask; default: this process)")
    g.add_argument("--scheduler", metavar="ADDRESS", default=None,
                   help="address of a running Dask scheduler (tcp://host:8786), e.g. of a SLURM cluster")
    g.add_argument("--workers", metavar="K", type=_workers, default=None,
                   help="start a local Dask cluster of K worker processes for this command")


def cluster(args) -> dict:
    """The ``client`` / ``workers`` keywords of :func:`add_cluster`'s options (errors of the library
    that name ``client`` / ``workers`` are printed naming --scheduler / --workers)."""
    if args.scheduler is not None and args.workers is not None:
        raise CLIError(f"give --scheduler or --workers, not both (got --scheduler {args.scheduler} and --workers "
                       f"{args.workers})")
    return {"client": args.scheduler, "workers": args.workers}


def checkpoint_dir(args) -> str:
    """Where a command keeps its finished chunks (for the interruption message)."""
    if getattr(args, "checkpoint", None):
        return str(args.checkpoint)
    if args.command == "feature":
        return args.checkpoint_dir or "nowhere (pass --checkpoint-dir DIR to keep the sampler's state)"
    if args.command == "sample":
        return f"{args.out}.checkpoints"
    if not getattr(args, "out", None):
        return "nowhere (pass --out DIR to keep finished chunks)"
    return str(Path(args.out) / ".checkpoints")


__all__ = ["EXIT_INTERRUPTED", "EXIT_USAGE", "FORMATTER", "CLIError", "Parser", "add_cluster", "add_inputs",
           "add_prior", "check_output_file", "checkpoint_dir", "cluster", "examples", "float_list", "inputs", "int_list", "network",
           "one_line", "out_file"]
