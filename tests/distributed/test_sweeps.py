"""Sweeps on Dask (issue 22, part 4): a phase-diagram grid computed on 2 workers is the
single-process one, bit for bit."""

import numpy as np

import netfield as nf


def test_phase_diagram_on_workers_is_the_single_process_grid(dask_client):
    for activation in ("erf", "tanh"):
        here = nf.phase_diagram(activation, resolution=(21, 13))
        there = nf.phase_diagram(activation, resolution=(21, 13), client=dask_client)
        for name in ("q_star", "chi_1", "lyapunov", "c_star", "chi_c", "xi_c", "phase"):
            assert np.array_equal(getattr(here, name), getattr(there, name)), (activation, name)
        assert (here.phase == 2).any() and (here.phase == 0).any()  # both phases on the grid: a real test
