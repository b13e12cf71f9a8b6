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


def test_depth_selection_on_workers_is_the_single_process_one(dask_client):
    from netfield.gp import select_depth

    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 4))
    y = np.sign(x[:, 0] * x[:, 1])
    net = nf.dnn(1, "relu", weight_var=2.0, bias_var=0.1)
    here = select_depth(net, x, y, noise=0.1, depths=[1, 2, 4, 8], progress=False)
    there = select_depth(net, x, y, noise=0.1, depths=[1, 2, 4, 8], progress=False, client=dask_client)
    assert np.array_equal(here.log_evidence, there.log_evidence) and here.best_depth == there.best_depth
    assert len(set(np.round(here.log_evidence, 6))) == 4  # distinct scores: the order of the results matters


def test_feature_width_scan_on_workers_is_the_single_process_one(tmp_path, dask_client):
    import json

    from netfield.feature import study

    tiny = {"chains": 2, "samples": 12, "thin": 1, "burn_in": 12}
    kw = {"signals": (0.3, 1.0), "widths": (8, 16), "extra": (), "points": 2**11, "sampler": tiny, "curve": ()}
    here = study.width_study(out=tmp_path / "a.json", **kw)
    there = study.width_study(out=tmp_path / "b.json", client=dask_client, **kw)
    strip = lambda r: [{k: v for k, v in e.items() if k != "seconds"} for e in r["samples"]]
    assert strip(here) == strip(there)
    assert strip(json.loads((tmp_path / "b.json").read_text())) == strip(there)  # saved in plan order


def test_posterior_chain_groups_on_workers_are_the_single_process_ones(dask_client):
    # issue 22 part 3: the posterior sampler's chains as tasks (one per chain group). Fails if a task drew
    # another group's chains, the groups came back in completion order, or a worker's program differed.
    from netfield.feature import posterior_samples

    x, y = np.array([[1.0, 0.0], [0.3, 1.0], [0.5, -0.4]]), np.array([[1.0, -1.0, 0.3]])
    for net in (nf.rnn(2, "erf", weight_var=1.5), nf.gru(2)):
        kw = {"width": 8, "kappa": 0.5, "chains": 4, "samples": 4, "thin": 2, "burn_in": 6, "chain_group": 1,
              "x_test": x[:1] + 0.2}
        here = posterior_samples(net, x, y, **kw)
        there = posterior_samples(net, x, y, client=dask_client, **kw)
        for name in ("kernel", "kernel_se", "kernel_sq", "overlap", "prediction", "prediction_se", "acceptance",
                     "step_size", "readout_trace", "chain_kernel", "w_eigenvalues"):
            assert np.array_equal(getattr(here, name), getattr(there, name)), (net, name)
        assert len({tuple(r) for r in np.round(here.readout_trace, 12)}) == 4  # four distinct chains


def test_feature_command_runs_chain_groups_on_a_scheduler_with_the_numbers_of_this_process(tmp_path, dask_client):
    # netfield feature --chain-group 1 --scheduler ADDRESS: each chain a Dask task; the same sampled numbers
    # as the same groups run here (fails if the command dropped --chain-group, or ran the groups elsewhere
    # with other keys), with one checkpoint file per group
    import json

    from netfield.cli import main

    base = ["feature", "--arch", "dnn", "--signal", "0.5", "--points", "1024", "--width", "16", "--chains", "2",
            "--samples", "10", "--burn-in", "10", "--thin", "1", "--chain-group", "1", "--quiet"]
    assert main(base + ["--out", str(tmp_path / "here.json"), "--checkpoint-dir", str(tmp_path / "ck")]) == 0
    assert main(base + ["--out", str(tmp_path / "there.json"), "--scheduler", dask_client.scheduler.address]) == 0
    here, there = (json.loads((tmp_path / f"{n}.json").read_text())["sampling"][0] for n in ("here", "there"))
    for key in ("order", "kernel", "kernel_sq", "overlap", "prediction", "acceptance", "step_size", "tau"):
        assert here[key] == there[key], key
    assert sorted(p.name for p in (tmp_path / "ck").iterdir()) == ["feature_0.5.chains-0-0.npz",
                                                                   "feature_0.5.chains-1-1.npz"]
