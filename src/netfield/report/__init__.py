"""The report written by ``netfield demo``: figures (matplotlib, Agg), summary blocks, HTML, progress.

- :mod:`~netfield.report.demo`: :func:`run_demo`, the main job.
- :mod:`~netfield.report.summary`: the numbers behind each figure (JSON-ready dicts).
- :mod:`~netfield.report.figures`: figures drawn from those dicts only.
- :mod:`~netfield.report.html`: ``index.html``.
- :mod:`~netfield.report.progress`: a tiny progress bar on stderr.
"""

from .demo import DemoConfig, run_demo

__all__ = ["DemoConfig", "run_demo"]
