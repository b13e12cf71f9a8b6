"""A tiny progress bar on stderr (no dependency), numbered stage messages, and the progress convention.

On a terminal the bar is redrawn in place (at most every 0.1 s); when stderr is a file or a pipe
(CI logs, tests) it prints one line per 10 % so that logs stay short. A bar without a total (an
optimiser's evaluations) counts up instead; off a terminal it prints at 1, 2, 5, 10, 20, 50, ... items
and its final count.

The time left is extrapolated from the items finished *after* the first update: the first item of a
run usually includes JAX's compilation, which would inflate the estimate many times over.

Convention of the public API (every call that can take more than ~10 s): a keyword ``progress``,
``True`` by default, accepted in three forms, resolved by :func:`progress_bar`:

- ``True``: netfield's bar on stderr (never stdout);
- ``False`` or ``None``: quiet;
- a callable ``progress(k)``: told about k more finished items, e.g. a :class:`ProgressBar` the
  caller shares across several calls (then the function draws nothing itself).

The command line maps ``--quiet`` to ``progress=False``. :func:`silenced` makes every bar and stage
message created inside it quiet (for a caller that runs library functions as parts of its own
quiet run).
"""

from __future__ import annotations

import contextlib
import contextvars
import sys
import time
import warnings

_SILENCED = contextvars.ContextVar("netfield_progress_silenced", default=False)


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    return f"{seconds // 60}:{seconds % 60:02d}" if seconds >= 60 else f"{seconds}s"


@contextlib.contextmanager
def silenced():
    """Inside this block every :class:`ProgressBar` and :class:`Stages` created is quiet."""
    token = _SILENCED.set(True)
    try:
        yield
    finally:
        _SILENCED.reset(token)


def _counter_marks(done: int) -> bool:
    """1, 2, 5, 10, 20, 50, ...: when a bar without a total prints off a terminal."""
    if done < 1:
        return False
    while done % 10 == 0:
        done //= 10
    return done in (1, 2, 5)


class ProgressBar:
    """Counts finished work items; call it with the number of items just finished.

    Args:
        total: number of items, or None when unknown (a counter without bar and time left).
        label: text before the bar.
        stream: where to write (default stderr).
        width: characters of the bar.
        enabled: False draws nothing (also inside :func:`silenced`).
        unit: word after the count of a bar without total (e.g. ``"evaluations"``).
        clock: the time source (default ``time.monotonic``; tests pass a fake clock).

    Example:
        >>> import io
        >>> buf = io.StringIO()
        >>> with ProgressBar(4, "sampling", stream=buf) as bar:
        ...     for _ in range(4):
        ...         bar(1)
        >>> "4/4" in buf.getvalue()
        True
    """

    def __init__(self, total: int | None, label: str = "", *, stream=None, width: int = 28, enabled: bool = True,
                 unit: str = "", clock=time.monotonic):
        self.total = None if total is None else max(int(total), 1)
        self.label = label
        self.unit = unit
        self.stream = sys.stderr if stream is None else stream
        self.width = width
        self.enabled = bool(enabled) and not _SILENCED.get()
        self.done = 0
        self._clock = clock
        self.start = clock()
        self._first = None  # (time, done) at the first update: the rate is measured after it
        self._last_draw = 0.0
        self._last_decile = -1
        self._printed = 0
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def __call__(self, count: int = 1) -> None:
        self.update(count)

    def update(self, count: int = 1) -> None:
        self.done += int(count)
        if self.total is not None:
            self.done = min(self.done, self.total)
        now = self._clock()
        if self._first is None:
            self._first = (now, self.done)
        if not self.enabled:
            return
        finished = self.total is not None and self.done == self.total
        if self._tty:
            if now - self._last_draw >= 0.1 or finished:
                self._last_draw = now
                self._write("\r" + self._line(now))
        elif self.total is None:
            if _counter_marks(self.done):
                self._write(self._line(now) + "\n")
        else:
            decile = (10 * self.done) // self.total
            if decile > self._last_decile:
                self._last_decile = decile
                self._write(self._line(now) + "\n")

    def _write(self, text: str) -> None:
        self._printed = self.done
        self.stream.write(text)
        self.stream.flush()

    def eta(self, now: float | None = None) -> float | None:
        """Seconds left, from the rate after the first update; None while it cannot be estimated."""
        now = self._clock() if now is None else now
        if self.total is None or self._first is None:
            return None
        t1, d1 = self._first
        if self.done >= self.total:
            return 0.0
        if self.done <= d1 or now <= t1:
            return None
        return (now - t1) / (self.done - d1) * (self.total - self.done)

    def _line(self, now: float) -> str:
        elapsed = now - self.start
        if self.total is None:
            unit = f" {self.unit}" if self.unit else ""
            return f"  {self.label} {self.done}{unit} [{_duration(elapsed)} elapsed]"
        frac = self.done / self.total
        filled = round(frac * self.width)
        eta = self.eta(now)
        left = "?" if eta is None else _duration(eta)
        bar = "#" * filled + "-" * (self.width - filled)
        return (f"  {self.label} |{bar}| {100 * frac:3.0f}% {self.done}/{self.total} "
                f"[{_duration(elapsed)} elapsed, {left} left]")

    def close(self) -> None:
        if not self.enabled:
            return
        if self._tty:
            if self.total is None and self.done:
                self._write("\r" + self._line(self._clock()))
            self.stream.write("\n")
            self.stream.flush()
        elif self.total is None and self.done and self._printed != self.done:
            self._write(self._line(self._clock()) + "\n")  # the final count

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


class _Forward:
    """A caller's ``progress(k)`` callable seen as a bar (nothing drawn, nothing closed)."""

    def __init__(self, fn):
        self.fn = fn

    def __call__(self, count: int = 1) -> None:
        self.fn(count)

    update = __call__

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def check_progress(progress):
    """``progress`` as accepted by the API: True, False, None or a callable ``progress(k)``."""
    if progress is None or isinstance(progress, bool) or callable(progress):
        return progress
    raise TypeError(f"progress must be True (a bar on stderr), False / None (quiet) or a callable progress(k), "
                    f"got {progress!r}")


def progress_bar(progress, total: int | None, label: str, *, unit: str = "", stream=None):
    """The bar a long call draws for its ``progress`` argument (the convention in the module docstring).

    Returns a context manager called with the number of items just finished: a :class:`ProgressBar`
    for True, a disabled one for False / None, or a forwarder to the caller's callable.
    """
    progress = check_progress(progress)
    if callable(progress) and not isinstance(progress, bool):
        return _Forward(progress)
    return ProgressBar(total, label, unit=unit, stream=stream, enabled=bool(progress))


class Stages:
    """Numbered step messages: ``[2/5] sampling networks (0:14)`` (time since the first step started).

    A caller that starts more stages than ``total`` gets a RuntimeWarning once and the total grows,
    so that no count above the total is ever printed.
    """

    def __init__(self, total: int, *, stream=None, enabled: bool = True, clock=time.monotonic):
        if isinstance(total, bool) or not isinstance(total, int) or total < 1:
            raise ValueError(f"total must be an integer >= 1 (the number of stages), got {total!r}")
        self.total, self.index = total, 0
        self.stream = sys.stderr if stream is None else stream
        self.enabled = bool(enabled) and not _SILENCED.get()
        self._clock = clock
        self.start = clock()
        self._warned = False

    def __call__(self, message: str) -> None:
        self.index += 1
        if self.index > self.total:
            if not self._warned:
                warnings.warn(f"Stages({self.total}) was called for stage {self.index}; pass the number of stages "
                              f"the caller runs", RuntimeWarning, stacklevel=2)
                self._warned = True
            self.total = self.index
        if self.enabled:
            t = self._clock() - self.start
            self.stream.write(f"[{self.index}/{self.total}] {message} ({_duration(t)})\n")
            self.stream.flush()


__all__ = ["ProgressBar", "Stages", "check_progress", "progress_bar", "silenced"]
