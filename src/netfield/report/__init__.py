"""The report written by ``netfield demo``: figures (matplotlib, Agg), summary blocks, HTML, progress.

- :mod:`~netfield.report.demo`: :func:`run_demo`, the main job.
- :mod:`~netfield.report.summary`: the numbers behind each figure (JSON-ready dicts).
- :mod:`~netfield.report.figures`: figures drawn from those dicts only.
- :mod:`~netfield.report.html`: ``index.html``.
- progress output: :mod:`netfield._runtime.progress` (shared with the capabilities and the CLI).
"""

from .demo import DemoConfig, run_demo

__all__ = ["DemoConfig", "run_demo"]
