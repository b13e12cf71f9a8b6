"""Run-time helpers shared by every layer: resumable runs, seeds, progress output.

This package sits at the bottom of the dependency stack (next to ``netfield._checks``): it imports
nothing from netfield but ``_checks``, so capabilities (``netfield.nlo``, ``netfield.feature``, ...),
the studies in ``netfield.experiments`` / ``netfield.report`` and the command line can all use it.

- :mod:`~netfield._runtime.checkpoint`: resumable runs (one atomic .npz per finished chunk); the
  public names are re-exported by :mod:`netfield.experiments` (``ChunkStore``, ``run_chunks``, ``run_key``).
- :mod:`~netfield._runtime.seeds`: seed validation and per-sub-run seed derivation.
- :mod:`~netfield._runtime.progress`: a tiny progress bar and numbered stage messages on stderr.
"""

from .checkpoint import ChunkStore, array_digest, run_chunks, run_key
from .progress import ProgressBar, Stages
from .seeds import check_seed, derive_seed

__all__ = ["ChunkStore", "ProgressBar", "Stages", "array_digest", "check_seed", "derive_seed", "run_chunks",
           "run_key"]
