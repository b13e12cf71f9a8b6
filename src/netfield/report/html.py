"""The report's ``index.html``: every figure with one paragraph saying what it shows."""

from __future__ import annotations

import html
from pathlib import Path

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
figure { margin: 2em 0; } img { max-width: 100%; border: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.85em; } td, th { border: 1px solid #ccc; padding: 3px 6px; text-align: right; }
th { background: #f3f3f3; } code { background: #f6f6f6; padding: 0 3px; }
p.run { color: #444; border-left: 3px solid #ccc; padding-left: 0.6em; } nav ol { columns: 2; }
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
            f"DNN and RNN share their mean-field kernel, but the RNN's finite-width kernel fluctuates more: its "
            f"entrywise standard deviation is on average {k['mean_std_ratio']:.2f} times the DNN's "
            f"(± {k['mean_std_ratio_se']:.2f}, bootstrap over the {k['networks']} sampled networks of width "
            f"{k['width']} per architecture). "
            f"Top: the mean-field (infinite-width) readout kernels of a DNN with {T} layers and an RNN run for {T} "
            f"steps on {len(k['labels'])} standardised digit images (scikit-learn's bundled digits), "
            f"weight_var={k['weight_var']}, bias_var={k['bias_var']}. They are identical (largest difference "
            f"{k['max_abs_difference']:.1e}, printed in the top-right panel instead of an empty map): with a readout "
            f"at a single time the RNN's weight sharing does not change the Gaussian-process kernel "
            f"(docs/theory.md 2.2; [1]). Bottom: the entrywise standard deviation of the sampled readout kernels."
        ),
        "cross_time": (
            f"The RNN remembers: its pre-activations at different time steps are strongly correlated, the DNN's are "
            f"not (C(T={T}, s) at s = 1: RNN {ct['memory']['rnn_mean'][0]:.3f} ± {ct['memory']['rnn_sem'][0]:.3f}, "
            f"DNN {ct['memory']['dnn_mean'][0]:.3f} ± {ct['memory']['dnn_sem'][0]:.3f}). "
            f"Two-time pre-activation kernel C(t, s) of digit '{ct['label']}': in the RNN the same W, U and b act at "
            f"every step (left: mean field; second: mean of {ct['networks']} sampled networks of width {ct['width']}, "
            f"which match it). In the DNN every layer has fresh weights and the cross-layer kernel vanishes (third "
            f"panel: only the diagonal survives). Right: the row C(T={T}, s), mean field (lines) and sampled "
            f"(markers, ± standard error). These cross-time correlations are what makes the RNN's finite-width "
            f"noise accumulate over time (docs/theory.md 4.1; [1])."
        ),
        "convergence": (
            f"The RNN converges to the mean field slower than the DNN: its amplitude is "
            f"{_pm(ro['ratio'], ro['ratio_se'])} times the DNN's for the readout kernel and "
            f"{_pm(pre['ratio'], pre['ratio_se'])} times for the pre-activation kernel, so it needs about "
            f"{ro['ratio'] ** 2:.1f} times the width for the same distance [1]. "
            f"Top: mean relative Frobenius distance between the empirical and the mean-field kernel at step T={T} "
            f"against the width n (log-log, ± standard error over {cv['networks']} networks), for the readout kernel "
            f"(left) and the pre-activation kernel (right), weight_var={cv['weight_var']}. Fitted exponents (readout): "
            f"DNN {_pm(ro['dnn']['fit']['exponent'], ro['dnn']['fit']['exponent_se'], 3)}, RNN "
            f"{_pm(ro['rnn']['fit']['exponent'], ro['rnn']['fit']['exponent_se'], 3)}, to compare with the n^(-1/2) "
            f"of leading-order fluctuations (fits of the squared distance, expected n^(-1), are in summary.json). "
            f"Bottom: sqrt(n) times the distance levels off at the amplitude A."
        ),
        "weight_var": (
            f"Both architectures converge more slowly the more chaotic the network, and the RNN's disadvantage "
            f"depends on the prior: its largest readout ratio here is "
            f"{_pm(wv['readout']['ratio'][best], wv['readout']['ratio_se'][best])} at weight_var="
            f"{wv['weight_vars'][best]:g}. Amplitudes (left) and the RNN/DNN ratio (right) at step T={T} for weight "
            f"variances in the ordered, critical and chaotic regimes (chi_1 = "
            f"{', '.join(f'{c:.2f}' for c in wv['chi1'])}; {edge} [2, 3])."
        ),
        "depth": (
            f"The RNN's disadvantage grows with the number of time steps: at t=1 both architectures are the same "
            f"network (ratio {_pm(row['ratio'][0], row['ratio_se'][0])}), at t={T} the ratio is "
            f"{_pm(row['ratio'][-1], row['ratio_se'][-1])} (weight_var={row['weight_var']:g}), because the RNN's "
            f"correlated noise accumulates while the DNN's does not. Left: readout-kernel amplitude against the "
            f"layer / time step t at which the network is read out (weight_var={dp['weight_var']}); the first t "
            f"layers of the sampled networks are networks of depth t. Right: RNN/DNN ratio against t for every "
            f"weight variance."
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


REFERENCES = (
    ("1", ("Segadlo, Epping, van Meegen, Dahmen, Kraemer, Helias (2022). Unified field theoretical approach to deep "
          "and recurrent neuronal networks. J. Stat. Mech. 103401, arXiv:2112.05589.")),
    ("2", ("Poole, Lahiri, Raghu, Sohl-Dickstein, Ganguli (2016). Exponential expressivity in deep neural networks "
          "through transient chaos. NeurIPS 2016.")),
    ("3", "Schoenholz, Gilmer, Ganguli, Sohl-Dickstein (2017). Deep information propagation. ICLR 2017."),
    ("4", "Rasmussen, Williams (2006). Gaussian Processes for Machine Learning. MIT Press."),
    ("5", ("Roberts, Yaida, Hanin (2022). The Principles of Deep Learning Theory. Cambridge University Press, "
          "arXiv:2106.10165.")),
    ("6", ("Yang (2019). Wide feedforward or recurrent neural networks of any architecture are Gaussian processes "
          "(Tensor Programs I). NeurIPS 2019, arXiv:1910.12478.")),
    ("7", ("Bauer, Fischer, Helias, Palmigiano (2026). A unified theory of feature learning in RNNs and DNNs. "
          "arXiv:2602.15593.")),
)


def _run_line(section: dict) -> str:
    """Wall time, sample sizes and the full-size command of a section, as HTML."""
    parts = []
    if "seconds" in section:
        parts.append(f"<b>Computed in {section['seconds']:.0f} s</b>")
    if section.get("plan"):
        parts.append("sample sizes: " + html.escape(section["plan"]))
    text = "; ".join(parts)
    if section.get("reproduce"):
        text += (f"<br>How to reproduce this at full size: <code>{html.escape(section['reproduce'])}</code>"
                 " (or the whole report: <code>netfield demo --full</code>)")
    return f"<p class='run'><small>{text}</small></p>"


def write_index(summary: dict, out_dir) -> Path:
    """Write ``index.html`` next to the figures listed in ``summary["figures"]`` and the sections' figures."""
    cfg = summary["config"]
    caps = captions(summary)
    main = summary.get("main", {})
    sections = [(key, sec) for key, sec in summary.get("sections", {}).items() if "error" not in sec]
    toc = ["<li><a href='#headline'>Headline numbers</a></li>"]
    toc += [f"<li><a href='#{name}'>{html.escape(TITLES[name])}</a></li>" for name in summary["figures"]]
    toc += [f"<li><a href='#section-{key}'>{html.escape(sec['title'])}</a></li>" for key, sec in sections]
    toc += ["<li><a href='#references'>References</a></li>"]
    size = "full-size" if cfg.get("full") else "fast (default)"
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>netfield report: DNN vs RNN convergence</title><style>{_STYLE}</style></head><body>",
        "<h1>Finite deep and recurrent networks converge to their mean-field kernels at different speeds</h1>",
        "<p>" + html.escape(
            f"Segadlo et al. (2022) [1] show that deep (DNN) and recurrent (RNN) networks share their mean-field "
            f"kernels and report numerically that finite RNNs converge to them more slowly. This report reproduces "
            f"it with netfield {summary['netfield_version']}: {cfg['activation']} DNNs with {cfg['depth']} layers and "
            f"RNNs run for {cfg['depth']} time steps, bias_var={cfg['bias_var']}, widths {cfg['widths'][0]}..{cfg['widths'][-1]}, "
            f"{cfg['networks']} sampled networks per width, architecture and weight variance, seed {cfg['seed']}. "
            f"A = lim sqrt(n) E[distance] is the convergence amplitude; A_RNN/A_DNN > 1 means the RNN is slower. "
            f"This is the {size} report; every number carries its standard error."
        ) + "</p>",
        "<nav><h2>Contents</h2><ol>" + "".join(toc) + "</ol></nav>",
        "<h2 id='headline'>Headline numbers (last step)</h2>",
        _table(summary["headline"]),
        "<p>Every number plotted below is in <a href='summary.json'>summary.json</a>.</p>",
        _run_line(main),
    ]
    for name, data in summary["figures"].items():
        parts.append(f"<figure id='{name}'><h2>{html.escape(TITLES[name])}</h2>"
                     f"<img src='{html.escape(data['file'])}' alt='{html.escape(TITLES[name])}'>"
                     f"<figcaption><p>{html.escape(caps[name])}</p></figcaption></figure>")
    for key, section in sections:
        parts.append(f"<h2 id='section-{key}'>{html.escape(section['title'])}</h2>")
        parts.append(_run_line(section))
        for name in section["figures"]:
            parts.append(f"<figure><img src='{html.escape(name)}' alt='{html.escape(section['title'])}'>"
                         f"<figcaption><p>{html.escape(section['paragraphs'][name])}</p></figcaption></figure>")
    parts.append("<h2 id='references'>References</h2><ol>"
                 + "".join(f"<li id='ref{n}'>[{n}] {html.escape(text)}</li>" for n, text in REFERENCES) + "</ol>")
    timing = summary["timing"]
    cache = timing.get("compilation_cache")
    parts.append(f"<p><small>Generated by <code>netfield demo{' --full' if cfg.get('full') else ''}</code> in "
                 f"{timing['total_s']:.0f} s (JAX compilation cache: "
                 f"{html.escape(cache) if cache else 'off'}).</small></p></body></html>")
    path = Path(out_dir) / "index.html"
    path.write_text("\n".join(parts), encoding="utf-8")
    return path
