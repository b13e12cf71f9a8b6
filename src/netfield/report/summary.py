"""The numbers behind each figure of the demo report, as JSON-ready dicts.

Each ``*_block`` function returns the dict stored under ``summary["figures"][name]``; the figure of
the same name (:mod:`netfield.report.figures`) is drawn from that dict alone.
"""

from __future__ import annotations

import numpy as np

from .._runtime.seeds import derive_seed
from ..experiments.convergence import (
    ARCHITECTURES,
    KERNELS,
    ConvergenceStudy,
    equal_time_blocks,
)
from ..finite import mean_and_sem, sample
from ..finite.sampler import default_chunk_size
from ..meanfield import kernel, mean_field


def regime(chi1: float, tol: float = 0.02) -> str:
    """Label of a weight prior by chi_1 (docs/theory.md 3.1): 'critical' within ``tol`` of 1, else ordered /
    chaotic."""
    return "critical" if abs(chi1 - 1.0) <= tol else ("ordered" if chi1 < 1.0 else "chaotic")


def chi1_values(activation: str, weight_vars, bias_var: float) -> list[float]:
    """chi_1 of each weight variance, from :func:`netfield.mean_field_criticality`."""
    from ..criticality import criticality

    return [float(criticality(activation, wv, bias_var).chi_1) for wv in weight_vars]


def _tolist(a) -> list:
    return np.asarray(a, float).tolist()


def _sample_like_study(net, x, width: int, networks: int, seed: int, chunk_size: int):
    """``networks`` networks sampled in chunks of the study's shape (:func:`netfield.experiments.convergence.measure`
    samples ``chunk_size`` networks per call), so that the study's compiled program is reused; the networks do
    not depend on the chunking (network i uses fold_in(PRNGKey(seed), i))."""
    chunk = min(chunk_size, networks, default_chunk_size(width, len(x), net.steps))
    return sample(net, x, width, networks, seed, readout="all", preactivations="all", chunk_size=chunk)


def _mean_std_ratio_se(k_emp: dict) -> float:
    """Standard error of the mean (over entries) RNN/DNN ratio of entrywise standard deviations: delete-one
    jackknife over the sampled networks (network i of each architecture removed together; the two
    architectures' networks are independent, so the pairs are independent units)."""
    k_d, k_r = k_emp["dnn"], k_emp["rnn"]
    m = len(k_d)
    keep = lambda k, i: np.delete(k, i, axis=0).std(axis=0, ddof=1)
    vals = np.array([np.mean(keep(k_r, i) / keep(k_d, i)) for i in range(m)])
    return float(np.sqrt((m - 1) / m * np.sum((vals - vals.mean()) ** 2)))


def kernels_block(x, labels, study: ConvergenceStudy, weight_var: float, width: int, networks: int, seed: int,
                  chunk_size: int = 8) -> dict:
    """Mean-field readout kernels of DNN and RNN at step T and the std of sampled kernels at width n."""
    st = study.settings
    mft, std, emp = {}, {}, {}
    for arch in ARCHITECTURES:
        net = st.network(arch, weight_var)
        mft[arch] = np.asarray(kernel(net, x))
        ens = _sample_like_study(net, x, width, networks, derive_seed(seed, "kernels", arch, width), chunk_size)
        emp[arch] = equal_time_blocks(ens.readout, len(x), st.depth)[:, -1]
        std[arch] = emp[arch].std(axis=0, ddof=1)
    diff = mft["rnn"] - mft["dnn"]
    return {
        "file": "kernels.png", "labels": [int(v) for v in labels], "step": st.depth, "weight_var": weight_var,
        "bias_var": st.bias_var, "width": width, "networks": networks,
        "mft_dnn": _tolist(mft["dnn"]), "mft_rnn": _tolist(mft["rnn"]), "mft_difference": _tolist(diff),
        "max_abs_difference": float(np.max(np.abs(diff))),
        "std_dnn": _tolist(std["dnn"]), "std_rnn": _tolist(std["rnn"]),
        "std_ratio": _tolist(std["rnn"] / std["dnn"]),
        "mean_std_ratio": float(np.mean(std["rnn"] / std["dnn"])),
        "mean_std_ratio_se": _mean_std_ratio_se(emp),
    }


def cross_time_block(x, labels, study: ConvergenceStudy, weight_var: float, width: int, networks: int, seed: int,
                     pattern: int = 0, chunk_size: int = 8) -> dict:
    """C(t, s) of one pattern: RNN mean field, RNN and DNN sampled means, and the row C(T, s)."""
    st = study.settings
    T = st.depth
    emp_mean, emp_sem, mft = {}, {}, {}
    for arch in ARCHITECTURES:
        net = st.network(arch, weight_var)
        mft[arch] = np.asarray(mean_field(net, x).two_time(pattern))
        ens = _sample_like_study(net, x, width, networks, derive_seed(seed, "cross_time", arch, width),
                                 chunk_size)  # same compiled function as the study
        c = np.array([[ens.preactivation(t, s)[:, pattern, pattern] for s in range(1, T + 1)]
                      for t in range(1, T + 1)])  # (T, T, networks)
        emp_mean[arch], emp_sem[arch] = mean_and_sem(np.moveaxis(c, -1, 0))
    return {
        "file": "cross_time.png", "pattern": pattern, "label": int(labels[pattern]), "weight_var": weight_var,
        "bias_var": st.bias_var, "width": width, "networks": networks, "steps": list(range(1, T + 1)),
        "mft_rnn": _tolist(mft["rnn"]), "mft_dnn": _tolist(mft["dnn"]),
        "empirical_rnn": _tolist(emp_mean["rnn"]), "empirical_dnn": _tolist(emp_mean["dnn"]),
        "memory": {
            "s": list(range(1, T + 1)),
            "mft_rnn": _tolist(mft["rnn"][-1]), "rnn_mean": _tolist(emp_mean["rnn"][-1]),
            "rnn_sem": _tolist(emp_sem["rnn"][-1]),
            "mft_dnn": _tolist(mft["dnn"][-1]), "dnn_mean": _tolist(emp_mean["dnn"][-1]),
            "dnn_sem": _tolist(emp_sem["dnn"][-1]),
        },
    }


def curve_dict(curve) -> dict:
    """A convergence curve as JSON, with the plotted sqrt(n)-scaled mean and standard error."""
    out = curve.to_dict()
    root = np.sqrt(np.asarray(curve.widths, float))
    out["scaled_mean"] = _tolist(root * np.asarray(curve.mean))
    out["scaled_sem"] = _tolist(root * np.asarray(curve.sem))
    return out


def convergence_block(study: ConvergenceStudy, weight_var: float, step: int | None = None, *,
                      file: str = "convergence.png") -> dict:
    """Both kernels' DNN and RNN convergence curves at one weight variance and step."""
    st = study.settings
    step = st.depth if step is None else step
    panels = []
    for k in KERNELS:
        comp = study.comparison(weight_var, k, step)
        panels.append({"kernel": k, "dnn": curve_dict(comp.dnn), "rnn": curve_dict(comp.rnn),
                       "ratio": comp.ratio, "ratio_se": comp.ratio_se, "significance": comp.significance})
    return {"file": file, "weight_var": weight_var, "bias_var": st.bias_var, "step": step,
            "networks": st.networks, "panels": panels}


def weight_var_block(study: ConvergenceStudy, chi1s, critical: float, step: int | None = None) -> dict:
    """Amplitudes and RNN/DNN ratios at every studied weight variance."""
    st = study.settings
    step = st.depth if step is None else step
    out = {"file": "weight_var.png", "step": step, "bias_var": st.bias_var, "weight_vars": list(st.weight_vars),
           "chi1": [float(c) for c in chi1s], "regimes": [regime(c) for c in chi1s],
           "critical_weight_var": None if critical is None else float(critical)}
    for k in KERNELS:
        comps = [study.comparison(wv, k, step) for wv in st.weight_vars]
        out[k] = {
            "dnn_amplitude": [c.dnn.amplitude.prefactor for c in comps],
            "dnn_amplitude_se": [c.dnn.amplitude.prefactor_se for c in comps],
            "rnn_amplitude": [c.rnn.amplitude.prefactor for c in comps],
            "rnn_amplitude_se": [c.rnn.amplitude.prefactor_se for c in comps],
            "ratio": [c.ratio for c in comps], "ratio_se": [c.ratio_se for c in comps],
        }
    return out


def depth_block(study: ConvergenceStudy, weight_var: float, chi1s) -> dict:
    """Readout-kernel amplitudes against the step t, and RNN/DNN ratios for every weight variance."""
    st = study.settings
    steps = list(range(1, st.depth + 1))
    comps = [study.comparison(weight_var, "readout", t) for t in steps]
    ratios = []
    for wv, chi in zip(st.weight_vars, chi1s):
        cs = [study.comparison(wv, "readout", t) for t in steps]
        ratios.append({"weight_var": wv, "regime": regime(chi), "ratio": [c.ratio for c in cs],
                       "ratio_se": [c.ratio_se for c in cs]})
    return {
        "file": "depth.png", "weight_var": weight_var, "bias_var": st.bias_var, "steps": steps,
        "amplitude": {
            "dnn": [c.dnn.amplitude.prefactor for c in comps], "dnn_se": [c.dnn.amplitude.prefactor_se for c in comps],
            "rnn": [c.rnn.amplitude.prefactor for c in comps], "rnn_se": [c.rnn.amplitude.prefactor_se for c in comps],
        },
        "ratio": ratios,
    }


def headline_rows(study: ConvergenceStudy, chi1s) -> list[dict]:
    """One row per weight variance and kernel at the last step: exponents, amplitudes and the ratio."""
    rows = []
    for wv, chi in zip(study.settings.weight_vars, chi1s):
        for k in KERNELS:
            c = study.comparison(wv, k)
            rows.append({
                "weight_var": wv, "chi1": float(chi), "regime": regime(chi), "kernel": k, "step": c.dnn.step,
                "dnn_exponent": c.dnn.fit.exponent, "dnn_exponent_se": c.dnn.fit.exponent_se,
                "rnn_exponent": c.rnn.fit.exponent, "rnn_exponent_se": c.rnn.fit.exponent_se,
                "dnn_squared_exponent": c.dnn.fit_squared.exponent,
                "dnn_squared_exponent_se": c.dnn.fit_squared.exponent_se,
                "rnn_squared_exponent": c.rnn.fit_squared.exponent,
                "rnn_squared_exponent_se": c.rnn.fit_squared.exponent_se,
                "dnn_amplitude": c.dnn.amplitude.prefactor, "dnn_amplitude_se": c.dnn.amplitude.prefactor_se,
                "rnn_amplitude": c.rnn.amplitude.prefactor, "rnn_amplitude_se": c.rnn.amplitude.prefactor_se,
                "ratio": c.ratio, "ratio_se": c.ratio_se, "significance": c.significance,
            })
    return rows


def format_table(rows: list[dict]) -> str:
    """The headline rows as a fixed-width text table."""
    head = (f"{'weight_var':>10} {'regime':>8} {'kernel':>13} {'exponent DNN':>15} {'exponent RNN':>15} "
            f"{'A_DNN':>13} {'A_RNN':>13} {'A_RNN/A_DNN':>13}")
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['weight_var']:>10.4g} {r['regime']:>8} {r['kernel']:>13} "
            f"{r['dnn_exponent']:>7.3f} ± {r['dnn_exponent_se']:<5.3f} {r['rnn_exponent']:>7.3f} ± {r['rnn_exponent_se']:<5.3f} "
            f"{r['dnn_amplitude']:>5.2f} ± {r['dnn_amplitude_se']:<5.2f} {r['rnn_amplitude']:>5.2f} ± {r['rnn_amplitude_se']:<5.2f} "
            f"{r['ratio']:>5.2f} ± {r['ratio_se']:<5.2f}"
        )
    return "\n".join(lines)
