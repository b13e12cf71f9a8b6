"""Ctrl-C while the ``netfield`` command is still starting: exit 130 with the resume hint.

:func:`netfield.cli.main` turns a KeyboardInterrupt into exit status 130 and a resume hint from the
moment it runs; before that, the command spends about a second importing netfield (JAX first), where an
uncaught KeyboardInterrupt would print a traceback and end the process by SIGINT. For the ``netfield``
console script and ``python -m netfield`` only (never when a program imports netfield), :func:`install`
replaces ``sys.excepthook`` so that such an interrupt prints the hint and exits with status 130 at once
(``os._exit``: a half-imported JAX is not shut down). It runs first in ``netfield/__init__.py``.
While the command is still importing, its SIGINT handler exits at once in the same way rather than
raise KeyboardInterrupt: raised inside the initialisation of jaxlib's C extension, the exception
aborts the process ("terminate called after throwing an instance of 'nanobind::python_error'") or
segfaults it (both seen in tests/cli/test_cli_kill_resume.py). :func:`running` (called by
``netfield.cli.main`` first thing) ends that phase.

A Ctrl-C must not get lost either: Python raises KeyboardInterrupt in whatever Python code runs when
the signal arrives, and where that is a garbage-collector callback (JAX registers one), a ``__del__`` or
a weakref callback, the exception is printed as "Exception ignored in ..." and the run goes on (seen:
a Ctrl-C during the import, and the command then finished and exited 0). So the command's SIGINT
handler (installed only where SIGINT is not ignored) also marks the interrupt pending, and a watcher
thread delivers it again every :data:`REDELIVER_S` seconds until :func:`acknowledge` (called by
``netfield.cli.main`` when it catches the KeyboardInterrupt) clears it. When ``main`` returns (the result
written), :func:`finished` makes the command ignore SIGINT for the interpreter's shutdown, where Python
would otherwise restore the default action and a Ctrl-C would end the process by the signal.
"""

from __future__ import annotations

import os
import signal
import sys

EXIT_INTERRUPTED = 130
REDELIVER_S = 0.25
_pending: list = []  # [True] while a Ctrl-C waits to be caught by netfield.cli.main
_watcher: list = []
_running: list = []  # [True] once netfield.cli.main runs; before, a Ctrl-C exits at once
_command: list = []  # [True] in the netfield command (install() found it so; sys.argv[0] changes later)
HINT = ("\nnetfield: interrupted while starting; nothing new was computed; run the same command again (with "
        "--resume to reuse the finished chunks of an earlier interrupted run)\n")
LATE_HINT = "\nnetfield: interrupted; run the same command with --resume to continue\n"  # outside main's handler


def is_command() -> bool:
    """Whether this process is the ``netfield`` command (console script or ``python -m netfield``)."""
    argv0 = sys.argv[0] if sys.argv else ""
    if argv0 == "-m":  # python -m <module> while the module is being located (its package imported)
        orig = list(getattr(sys, "orig_argv", ()))
        return any(a == "-m" and orig[i + 1:i + 2] in (["netfield"], ["netfield.__main__"])
                   for i, a in enumerate(orig)) or "-mnetfield" in orig
    return os.path.basename(argv0).removesuffix(".exe") == "netfield"


def _hook(previous):
    def excepthook(kind, value, traceback):
        if issubclass(kind, KeyboardInterrupt):
            _exit_interrupted()
        previous(kind, value, traceback)

    excepthook.netfield_startup = True
    return excepthook


def _redeliver() -> None:
    import _thread
    import time

    while True:
        time.sleep(REDELIVER_S)
        if _pending:
            _thread.interrupt_main(signal.SIGINT)  # runs _on_sigint again in the main thread


def _exit_interrupted() -> None:
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
        if sys.stderr is not None:
            sys.stderr.write(HINT if not _running else LATE_HINT)
            sys.stderr.flush()
    finally:
        os._exit(EXIT_INTERRUPTED)


def exit_command(status: int) -> None:
    """In the ``netfield`` command (where :func:`install` ran): flush stdout / stderr and end the process with
    ``status`` now, skipping the interpreter's shutdown (``os._exit``); elsewhere (``main`` called from
    Python) return."""
    if not _command:
        return
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
    finally:
        os._exit(status)


def _on_sigint(signum, frame):
    if not _running:  # still importing: nothing to clean up, and an exception raised inside the
        _exit_interrupted()  # initialisation of a C extension (jaxlib) aborts or segfaults the process
    _pending[:] = [True]
    if not _watcher:
        try:
            import threading  # here, not at the top: this module runs before anything else of netfield

            _watcher.append(threading.Thread(target=_redeliver, name="netfield-sigint", daemon=True))
            _watcher[0].start()
        except Exception:  # noqa: BLE001 - e.g. threading itself half-imported: the interrupt still counts
            _watcher.clear()
    raise KeyboardInterrupt


def running() -> None:
    """``netfield.cli.main`` has started: from now on a Ctrl-C raises KeyboardInterrupt (caught by main)."""
    _running[:] = [True]


def finished() -> None:
    """``netfield.cli.main`` is returning its exit status in the command: a Ctrl-C from now on is ignored.
    The result is written by then; what is left is the interpreter's shutdown, where Python puts the
    default SIGINT action back before XLA and JAX are torn down, so a Ctrl-C there ended the process by
    the signal (status -2, no hint; seen in tests/cli/test_cli_kill_resume.py) instead of with main's
    status. An ignored SIGINT stays ignored through the shutdown."""
    if _command and signal.getsignal(signal.SIGINT) is _on_sigint:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def acknowledge() -> None:
    """The KeyboardInterrupt of a Ctrl-C was caught (by ``netfield.cli.main``): stop delivering it again."""
    _pending.clear()


def _unraisable(previous):
    def unraisablehook(unraisable):
        if isinstance(unraisable.exc_value, KeyboardInterrupt):
            return  # a Ctrl-C inside a gc callback / __del__: delivered again, no "Exception ignored" report
        previous(unraisable)

    return unraisablehook


def install() -> None:
    """In the ``netfield`` command: an uncaught KeyboardInterrupt exits 130 with the hint, and a Ctrl-C
    caught where Python ignores exceptions is delivered again (module docstring)."""
    if not is_command() or getattr(sys.excepthook, "netfield_startup", False):
        return
    _command[:] = [True]
    sys.excepthook = _hook(sys.excepthook)
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # not ignored (SIG_IGN) by the caller
        signal.signal(signal.SIGINT, _on_sigint)
        sys.unraisablehook = _unraisable(sys.unraisablehook)


__all__ = ["HINT", "LATE_HINT", "acknowledge", "exit_command", "finished", "install", "is_command", "running"]
