"""Where work runs: in this process, or as tasks on a Dask cluster (docs/distributed.md section 1).

The heavy entry points (:func:`netfield.kernel` in tiles, the ensembles of :func:`netfield.sample`'s
command line, :func:`netfield.nlo.simulate`, the convergence study, :func:`netfield.phase_diagram`)
take the same two keywords and hand them to :func:`executor`:

- ``client``: a ``distributed.Client`` the caller owns (used as is, never closed), or the address of a
  running Dask scheduler (``"tcp://10.0.0.5:8786"``: a ``dask-jobqueue`` SLURM cluster, a cloud
  cluster, ``dask scheduler`` on a workstation), connected to for the call and closed afterwards;
- ``workers``: the number of worker processes of a ``LocalCluster`` started for the call (one thread
  each: JAX runs its own threads) and shut down afterwards.

Without either, work runs here, in order, through :class:`InProcess` and ``dask`` is never imported.

Results do not depend on where work runs: a task is a pure function of its arguments (every random
draw is keyed by what it is, a network's index or a tile's position, never by who computes it), so
one process and any number of workers, in any order, give the same bits. Dask reschedules the tasks
of a worker that dies; a caller that checkpoints saves each task's result as it arrives
(:meth:`Executor.run`'s ``on_result``), so a lost worker or an interrupted run loses no finished work.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
import warnings
from collections.abc import Callable, Iterator, Sequence

from .._checks import check_positive_int

CONNECT_TIMEOUT = 10.0  # seconds to reach a scheduler before giving up with a clear error


class InProcess:
    """Runs tasks here, one after another, in task order (no Dask)."""

    workers = 1
    distributed = False

    def share(self, values: list) -> list:
        """Data that many tasks read (inputs of a block of rows): here, the values themselves."""
        return list(values)

    def run(self, fn: Callable, tasks: Sequence[tuple], *, on_result: Callable | None = None,
            label: str = "task") -> list:
        """``[fn(*args) for args in tasks]``, telling ``on_result(i, result)`` after each."""
        results = []
        for i, args in enumerate(tasks):
            results.append(fn(*args))
            if on_result is not None:
                on_result(i, results[-1])
        return results


class DaskExecutor:
    """Runs tasks on the workers of a ``distributed.Client``, results handled as they complete."""

    distributed = True

    def __init__(self, client):
        self.client = client

    @property
    def workers(self) -> int:
        return len(self.client.scheduler_info().get("workers", {}))

    def share(self, values: list) -> list:
        """Each value as the result of a task that holds it (a future on one worker): the tasks that read
        it run where it lives, and if that worker dies the scheduler, which keeps the task, computes it
        again elsewhere (scattered data would be lost with its worker)."""
        run_id = uuid.uuid4().hex[:12]
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*[Ll]arge graph.*")
            return [self.client.submit(_held, value, key=f"netfield-data-{run_id}-{i}", pure=False)
                    for i, value in enumerate(values)]

    def run(self, fn: Callable, tasks: Sequence[tuple], *, on_result: Callable | None = None,
            label: str = "task") -> list:
        """Submits ``fn(*args)`` for every task and returns the results in task order.

        ``on_result(i, result)`` runs here, in the caller's process, as each task finishes (in
        completion order): the place to save a checkpoint or advance a bar. A task that raises makes
        this raise the same exception after the remaining tasks are cancelled; so does an interrupt
        (Ctrl-C) of the caller.
        """
        from distributed import as_completed

        run_id = uuid.uuid4().hex[:12]  # task names only: they never enter a result
        futures = [self.client.submit(fn, *args, key=f"netfield-{label}-{run_id}-{i}", pure=False)
                   for i, args in enumerate(tasks)]
        index = {f.key: i for i, f in enumerate(futures)}
        results: list = [None] * len(futures)
        try:
            for future in as_completed(futures, loop=self.client.loop):
                i = index[future.key]
                results[i] = future.result()
                future.release()
                if on_result is not None:
                    on_result(i, results[i])
        finally:
            pending = [f for f in futures if not f.done()]
            if pending:
                self.client.cancel(pending)
        return results


def _held(value):
    return value


def thread_budget() -> int:
    """Threads one computation may use here: inside a Dask worker its own thread count (the worker
    processes beside it use the other cores; one fused-kernel call must not take them all), else
    every CPU of the machine."""
    import os
    import sys

    if "distributed" in sys.modules:
        try:
            from distributed import get_worker

            worker = get_worker()
        except (ValueError, ImportError):
            worker = None
        if worker is not None:
            state = getattr(worker, "state", worker)
            return max(1, int(getattr(state, "nthreads", 1)))
    return os.cpu_count() or 1


def check_workers(workers) -> int | None:
    """``workers``: None or an integer >= 1 (the CLI's --workers)."""
    return None if workers is None else check_positive_int("workers", workers)


def _distributed(what: str):
    try:
        import distributed
    except ImportError:  # pragma: no cover - the test extra installs it
        raise ImportError(f"{what} needs Dask: pip install 'netfield[dask]' (dask[distributed] and zarr)") from None
    return distributed


def _connect(distributed, address: str, timeout: float):
    try:
        return distributed.Client(address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as err:
        reason = " ".join(str(err).split()) or type(err).__name__
        raise ConnectionError(f"client: cannot reach a Dask scheduler at {address!r} within {timeout:g} s "
                              f"({reason}); start one (dask scheduler) or pass a running scheduler's "
                              f"address") from None


@contextlib.contextmanager
def executor(client=None, workers=None, *, timeout: float = CONNECT_TIMEOUT) -> Iterator:
    """The executor of a call's ``client`` / ``workers`` arguments (module docstring), as a context.

    Args:
        client: None, a ``distributed.Client``, a scheduler address (a string), or an executor this
            function yielded (passed down by a caller that runs several steps on one cluster).
        workers: None or the number (>= 1) of worker processes of a LocalCluster started for the call.
        timeout: seconds to wait for a scheduler at ``client``'s address.

    Yields:
        :class:`InProcess` (neither given) or a :class:`DaskExecutor`.

    Raises:
        ValueError: both given, or ``workers`` < 1; TypeError: ``client`` of another type;
        ConnectionError: no scheduler answers at the address within ``timeout`` (the message names it).
    """
    if isinstance(client, (InProcess, DaskExecutor)) and workers is None:  # opened by the caller's caller
        yield client
        return
    workers = check_workers(workers)
    if client is not None and workers is not None:
        raise ValueError(f"give client (a Dask client or scheduler address) or workers (a local cluster), not both; "
                         f"got client={client!r} and workers={workers}")
    if client is None and workers is None:
        yield InProcess()
        return
    distributed = _distributed("client=/workers=")
    if workers is not None:
        with distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                      dashboard_address=None, silence_logs=logging.CRITICAL) as cluster, \
                distributed.Client(cluster, set_as_default=False) as owned:
            yield DaskExecutor(owned)
        return
    if isinstance(client, str):
        if not client.strip():
            raise ValueError("client must be a Dask client or a scheduler address such as 'tcp://host:8786', got ''")
        owned = _connect(distributed, client, timeout)
        try:
            yield DaskExecutor(owned)
        finally:
            owned.close()
        return
    if isinstance(client, distributed.Client):
        yield DaskExecutor(client)
        return
    raise TypeError(f"client must be a distributed.Client or a scheduler address (str), got {type(client).__name__}")


__all__ = ["CONNECT_TIMEOUT", "DaskExecutor", "InProcess", "check_workers", "executor", "thread_budget"]
