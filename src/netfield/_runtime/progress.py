"""A tiny progress bar on stderr (no dependency).

On a terminal the bar is redrawn in place (at most every 0.1 s); when stderr is a file or a pipe
(CI logs, tests) it prints one line per 10 % so that logs stay short.
"""

from __future__ import annotations

import sys
import time


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    return f"{seconds // 60}:{seconds % 60:02d}" if seconds >= 60 else f"{seconds}s"


class ProgressBar:
    """Counts finished work items; call it with the number of items just finished.

    Example:
        >>> import io
        >>> buf = io.StringIO()
        >>> with ProgressBar(4, "sampling", stream=buf) as bar:
        ...     for _ in range(4):
        ...         bar(1)
        >>> "4/4" in buf.getvalue()
        True
    """

    def __init__(self, total: int, label: str = "", *, stream=None, width: int = 28, enabled: bool = True):
        self.total = max(int(total), 1)
        self.label = label
        self.stream = sys.stderr if stream is None else stream
        self.width = width
        self.enabled = enabled
        self.done = 0
        self.start = time.monotonic()
        self._last_draw = 0.0
        self._last_decile = -1
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def __call__(self, count: int = 1) -> None:
        self.update(count)

    def update(self, count: int = 1) -> None:
        self.done = min(self.done + int(count), self.total)
        if not self.enabled:
            return
        now = time.monotonic()
        if self._tty:
            if now - self._last_draw >= 0.1 or self.done == self.total:
                self._last_draw = now
                self.stream.write("\r" + self._line(now))
                self.stream.flush()
        else:
            decile = (10 * self.done) // self.total
            if decile > self._last_decile:
                self._last_decile = decile
                self.stream.write(self._line(now) + "\n")
                self.stream.flush()

    def _line(self, now: float) -> str:
        frac = self.done / self.total
        filled = round(frac * self.width)
        elapsed = now - self.start
        eta = _duration(elapsed / frac - elapsed) if frac >= 0.05 else "?"
        bar = "#" * filled + "-" * (self.width - filled)
        return (f"  {self.label} |{bar}| {100 * frac:3.0f}% {self.done}/{self.total} "
                f"[{_duration(elapsed)} elapsed, {eta} left]")

    def close(self) -> None:
        if self.enabled and self._tty:
            self.stream.write("\n")
            self.stream.flush()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


class Stages:
    """Numbered step messages: ``[2/5] sampling networks``."""

    def __init__(self, total: int, *, stream=None, enabled: bool = True):
        self.total, self.index = total, 0
        self.stream = sys.stderr if stream is None else stream
        self.enabled = enabled
        self.start = time.monotonic()

    def __call__(self, message: str) -> None:
        self.index += 1
        if self.enabled:
            t = time.monotonic() - self.start
            self.stream.write(f"[{self.index}/{self.total}] {message} ({_duration(t)})\n")
            self.stream.flush()
