"""The report's ``index.html``: every figure with one paragraph saying what it shows."""

from __future__ import annotations

import html
from pathlib import Path

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
figure { margin: 2em 0; } img { max-width: 100%; border: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.85em; } td, th { border: 1px solid #ccc; padding: 3px 6px; text-align: right; }
th { background: #f3f3f3; } code { background: #f6f6f6; padding: 0 3px; }
"""


def _pm(value: float, se: float, digits: int = 2) -> str:
    return f"{value:.{digits}f} ± {se:.{digits}f}"


def captions(summary: dict) -> dict:
    """One paragraph per figure, with the numbers it shows."""
    f = summary["figures"]
    cfg = summary["config"]
    k, ct, cv, wv, dp = f["kernels"], f["cross_time"], f["convergence"], f["weight_var"], f["depth"]
    ro, pre = cv["panels"][0], cv["panels"][1]
    T = cfg["depth"]
    best = max(range(len(wv["weight_vars"])), key=lambda i: wv["readout"]["ratio"][i])
    row = next(r for r in dp["ratio"] if r["weight_var"] == dp["weight_var"])
    crit = wv["critical_weight_var"]
    edge = (f"the edge of chaos is at weight_var={crit:.2f} for bias_var={wv['bias_var']}" if crit is not None
            else "no edge of chaos for this prior")
    return {
        "kernels": (
            f"Top: the mean-field (infinite-width) readout kernels of a DNN with {T} layers and an RNN run for {T} "
            f"steps on {len(k['labels'])} standardised digit images (scikit-learn's bundled digits), "
            f"weight_var={k['weight_var']}, bias_var={k['bias_var']}. They are identical "
            f"(largest difference {k['max_abs_difference']:.1e}): with a readout at a single time the RNN's weight "
            f"sharing does not change the Gaussian-process kernel (docs/theory.md 2.2). "
            f"Bottom: the entrywise standard "
            f"deviation of the readout kernels of {k['networks']} sampled networks of width {k['width']}. The RNN's "
            f"kernel fluctuates more: on average its standard deviation is {k['mean_std_ratio']:.2f} times the DNN's."
        ),
        "cross_time": (
            f"The two-time pre-activation kernel C(t, s) of digit '{ct['label']}'. In the RNN the same W, U and b act at "
            f"every step, so pre-activations at different times are strongly correlated (left: mean field; second: "
            f"mean of {ct['networks']} sampled networks of width {ct['width']}, which match it). In the DNN every layer "
            f"has fresh weights and the cross-layer kernel vanishes (third panel: only the diagonal survives). Right: "
            f"the row C(T={T}, s), mean field (lines) and sampled (markers, ± standard error). These cross-time "
            f"correlations are what makes the RNN's finite-width noise accumulate over time "
            f"(docs/theory.md 4.1)."
        ),
        "convergence": (
            f"Top: mean relative Frobenius distance between the empirical and the mean-field kernel at step T={T} "
            f"against the width n (log-log, ± standard error over {cv['networks']} networks), for the readout kernel "
            f"(left) and the pre-activation kernel (right), weight_var={cv['weight_var']}. Fitted exponents (readout): "
            f"DNN {_pm(ro['dnn']['fit']['exponent'], ro['dnn']['fit']['exponent_se'], 3)}, RNN "
            f"{_pm(ro['rnn']['fit']['exponent'], ro['rnn']['fit']['exponent_se'], 3)}, to compare with the n^(-1/2) "
            f"of leading-order fluctuations (fits of the squared distance, expected n^(-1), are in summary.json). Bottom: sqrt(n) "
            f"times the distance levels off at the amplitude A. The RNN's amplitude is "
            f"{_pm(ro['ratio'], ro['ratio_se'])} times the DNN's for the readout kernel and "
            f"{_pm(pre['ratio'], pre['ratio_se'])} times for the pre-activation kernel: the RNN converges slower and "
            f"needs about {ro['ratio'] ** 2:.1f} times the width for the same distance."
        ),
        "weight_var": (
            f"Amplitudes (left) and the RNN/DNN ratio (right) at step T={T} for weight variances in the ordered, "
            f"critical and chaotic regimes (chi_1 = {', '.join(f'{c:.2f}' for c in wv['chi1'])}; {edge}). Both architectures "
            f"converge more slowly the more chaotic the network; the RNN's disadvantage depends non-trivially on "
            f"the prior: its largest readout ratio here is "
            f"{_pm(wv['readout']['ratio'][best], wv['readout']['ratio_se'][best])} at weight_var="
            f"{wv['weight_vars'][best]:g}."
        ),
        "depth": (
            f"Left: readout-kernel amplitude against the layer / time step t at which the network is read out "
            f"(weight_var={dp['weight_var']}); the first t layers of the sampled networks are networks of depth t. "
            f"Right: RNN/DNN ratio against t for every weight variance. At t=1 both architectures are the same "
            f"network (ratio {_pm(row['ratio'][0], row['ratio_se'][0])}); with more time "
            f"steps the RNN's correlated noise accumulates while the DNN's does not, and the ratio grows "
            f"(to {_pm(row['ratio'][-1], row['ratio_se'][-1])} at t={T} for weight_var={row['weight_var']:g})."
        ),
    }


TITLES = {
    "kernels": "1. Kernel matrices: DNN vs RNN",
    "cross_time": "2. Cross-time kernel C(t, s) of the RNN",
    "convergence": "3. Convergence to the mean field with width",
    "weight_var": "4. Dependence on the weight variance",
    "depth": "5. Dependence on depth / number of time steps",
}


def _table(rows: list[dict]) -> str:
    head = ("<tr><th>weight_var</th><th>regime</th><th>kernel</th><th>exponent DNN</th><th>exponent RNN</th>"
            "<th>A<sub>DNN</sub></th><th>A<sub>RNN</sub></th><th>A<sub>RNN</sub>/A<sub>DNN</sub></th></tr>")
    body = "".join(
        f"<tr><td>{r['weight_var']:.4g}</td><td>{r['regime']}</td><td>{r['kernel']}</td>"
        f"<td>{_pm(r['dnn_exponent'], r['dnn_exponent_se'], 3)}</td><td>{_pm(r['rnn_exponent'], r['rnn_exponent_se'], 3)}</td>"
        f"<td>{_pm(r['dnn_amplitude'], r['dnn_amplitude_se'])}</td><td>{_pm(r['rnn_amplitude'], r['rnn_amplitude_se'])}</td>"
        f"<td>{_pm(r['ratio'], r['ratio_se'])}</td></tr>"
        for r in rows
    )
    return f"<table>{head}{body}</table>"


def write_index(summary: dict, out_dir) -> Path:
    """Write ``index.html`` next to the figures listed in ``summary["figures"]``."""
    cfg = summary["config"]
    caps = captions(summary)
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>netfield report: DNN vs RNN convergence</title><style>{_STYLE}</style></head><body>",
        "<h1>Finite deep and recurrent networks converge to their mean-field kernels at different speeds</h1>",
        "<p>" + html.escape(
            f"Segadlo et al. (2022) show that deep (DNN) and recurrent (RNN) networks share their mean-field "
            f"kernels and report numerically that finite RNNs converge to them more slowly. This report reproduces "
            f"it with netfield {summary['netfield_version']}: {cfg['activation']} DNNs with {cfg['depth']} layers and "
            f"RNNs run for {cfg['depth']} time steps, bias_var={cfg['bias_var']}, widths {cfg['widths'][0]}..{cfg['widths'][-1]}, "
            f"{cfg['networks']} sampled networks per width, architecture and weight variance, seed {cfg['seed']}. "
            f"A = lim sqrt(n) E[distance] is the convergence amplitude; A_RNN/A_DNN > 1 means the RNN is slower."
        ) + "</p>",
        "<h2>Headline numbers (last step)</h2>",
        _table(summary["headline"]),
        "<p>Every number plotted below is in <a href='summary.json'>summary.json</a>.</p>",
    ]
    for name, data in summary["figures"].items():
        parts.append(f"<figure id='{name}'><h2>{html.escape(TITLES[name])}</h2>"
                     f"<img src='{html.escape(data['file'])}' alt='{html.escape(TITLES[name])}'>"
                     f"<figcaption><p>{html.escape(caps[name])}</p></figcaption></figure>")
    for section in summary.get("sections", {}).values():
        if "error" in section:
            continue
        parts.append(f"<h2>{html.escape(section['title'])}</h2>")
        for name in section["figures"]:
            parts.append(f"<figure><img src='{html.escape(name)}' alt='{html.escape(section['title'])}'>"
                         f"<figcaption><p>{html.escape(section['paragraphs'][name])}</p></figcaption></figure>")
    parts.append(f"<p><small>Generated by <code>netfield demo</code> in {summary['timing']['total_s']:.0f} s."
                 "</small></p></body></html>")
    path = Path(out_dir) / "index.html"
    path.write_text("\n".join(parts), encoding="utf-8")
    return path
