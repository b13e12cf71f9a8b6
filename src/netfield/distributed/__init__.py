"""Where work runs: this process, or a Dask cluster (docs/distributed.md).

:func:`executor` turns a call's ``client`` / ``workers`` arguments into an executor of tasks;
:class:`~netfield.distributed.tilestore.TileStore` keeps a tiled matrix on disk (Zarr), resumable.
Dask and Zarr are optional (``pip install 'netfield[dask]'``) and imported only when asked for.
"""

from .executor import CONNECT_TIMEOUT, DaskExecutor, InProcess, check_workers, executor, thread_budget

__all__ = ["CONNECT_TIMEOUT", "DaskExecutor", "InProcess", "check_workers", "executor", "thread_budget"]
