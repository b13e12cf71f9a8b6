"""Shared check: a figure drawn from its summary block shows exactly that block's numbers."""

import numpy as np
import pytest
from matplotlib.container import ErrorbarContainer

from netfield.report.figures import FIGURES, difference_text


class Plotted:
    """The data of every image, line and error bar of a matplotlib figure."""

    def __init__(self, fig):
        self.images = [np.asarray(im.get_array()) for ax in fig.axes for im in ax.images]
        self.texts = [t.get_text() for ax in fig.axes for t in ax.texts]
        self.lines = [(np.asarray(ln.get_xdata(), float), np.asarray(ln.get_ydata(), float))
                      for ax in fig.axes for ln in ax.lines]
        self.errorbars = []
        for ax in fig.axes:
            for c in ax.containers:
                if isinstance(c, ErrorbarContainer):
                    data_line, _, barcols = c.lines
                    x, y = (np.asarray(v, float) for v in data_line.get_data())
                    segs = barcols[0].get_segments()
                    err = np.array([(s[1][1] - s[0][1]) / 2 for s in segs])
                    self.errorbars.append((x, y, err))

    def has_image(self, m):
        return any(im.shape == np.shape(m) and np.allclose(im, m, rtol=0, atol=0) for im in self.images)

    def has_line(self, x, y):
        return any(len(lx) == len(x) and np.array_equal(lx, x) and np.array_equal(ly, y) for lx, ly in self.lines)

    def has_errorbar(self, x, y, err, x_tol=0.0):
        return any(len(ex) == len(x) and np.allclose(ex, x, rtol=0, atol=x_tol) and np.array_equal(ey, y)
                   and np.allclose(ee, err, rtol=1e-12, atol=1e-15) for ex, ey, ee in self.errorbars)


def check_figure_shows(name: str, data: dict) -> None:
    """Assert that figure ``name`` drawn from ``data`` plots every number of ``data`` it promises."""
    p = Plotted(FIGURES[name](data))
    if name == "kernels":
        for key in ("mft_dnn", "mft_rnn", "std_dnn", "std_rnn", "std_ratio"):
            assert p.has_image(data[key]), key
        # the difference of the mean-field kernels is shown as its largest entry (a number, not a blank map)
        assert data["max_abs_difference"] == float(np.max(np.abs(data["mft_difference"])))
        assert difference_text(data["max_abs_difference"]) in p.texts
    elif name == "cross_time":
        for key in ("mft_rnn", "empirical_rnn", "empirical_dnn"):
            assert p.has_image(data[key]), key
        m = data["memory"]
        assert p.has_line(m["s"], m["mft_rnn"]) and p.has_line(m["s"], m["mft_dnn"])
        assert p.has_errorbar(m["s"], m["rnn_mean"], m["rnn_sem"])
        assert p.has_errorbar(m["s"], m["dnn_mean"], m["dnn_sem"])
    elif name == "convergence":
        for panel in data["panels"]:
            for arch in ("dnn", "rnn"):
                c = panel[arch]
                assert p.has_errorbar(c["widths"], c["mean"], c["sem"]), (panel["kernel"], arch)
                assert p.has_errorbar(c["widths"], c["scaled_mean"], c["scaled_sem"]), (panel["kernel"], arch)
                n = np.asarray(c["widths"], float)
                fitted = c["fit"]["prefactor"] * n[[0, -1]] ** c["fit"]["exponent"]
                assert any(np.allclose(ly[[0, -1]], fitted, rtol=1e-12) for _, ly in p.lines), "fitted line"
                np.testing.assert_allclose(c["scaled_mean"], np.sqrt(n) * np.asarray(c["mean"]), rtol=1e-12)
    elif name == "weight_var":
        wv = data["weight_vars"]
        for kernel in ("readout", "preactivation"):
            d = data[kernel]
            for arch in ("dnn", "rnn"):
                assert p.has_errorbar(wv, d[f"{arch}_amplitude"], d[f"{arch}_amplitude_se"]), (kernel, arch)
            assert p.has_errorbar(wv, d["ratio"], d["ratio_se"]), kernel
    elif name == "depth":
        steps = data["steps"]
        for arch in ("dnn", "rnn"):
            assert p.has_errorbar(steps, data["amplitude"][arch], data["amplitude"][f"{arch}_se"]), arch
        for row in data["ratio"]:  # drawn with a small horizontal offset per weight variance
            assert p.has_errorbar(steps, row["ratio"], row["ratio_se"], x_tol=0.2), row["weight_var"]
    else:
        raise AssertionError(f"no check for figure {name!r}")


@pytest.fixture
def figure_check():
    return check_figure_shows
