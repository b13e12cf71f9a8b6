"""Cross-checks of the one-loop theory for a DNN: the PDLT single-input recursions and the deep linear net.

Roberts-Yaida-Hanin ("The Principles of Deep Learning Theory"), docs/theory.md 4.2, with C_W = weight_var,
C_b = bias_var and the first layer K^(1) = bias_var + input_var |x|^2 / d:

    K^(l+1)  = C_b + C_W <s^2>_K                                                        (P1)
    chi      = (C_W / (2 K^2)) <s^2 (z^2 - K)>_K                                         (P2)
    V^(l+1)  = C_W^2 (<s^4>_K - <s^2>_K^2) + chi^2 V^(l)                                 (P3)
    G1^(l+1) = chi G1^(l) + (C_W / 8) (V^(l) / K^4) <s^2 (z^4 - 6 K z^2 + 3 K^2)>_K       (P4)

V^(l) / n is the variance and G1^(l) / n the mean shift of the layer-l conditional kernel; the readout is
one more layer with C_W = readout_var, C_b = readout_bias_var. These use explicit Stein-lemma integrands
(no autodiff), so agreement with :func:`netfield.one_loop` tests the Price-theorem derivatives.

Deep linear network without bias (PDLT eqs. 3.18-3.33): K^(l) = C_W^(l-1) K^(1), V^(l) = 2 (l - 1) (K^(l))^2,
G1^(l) = 0 exactly (P5).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..program import parse_inputs
from ..program.shape import UnsupportedProgram, require_chain
from .moments import gauss_hermite


@dataclass(frozen=True)
class PDLTRecursion:
    """Per layer l = 1..L and the readout (last entry): K, V, G1 (arrays of length L + 1)."""

    kernel: np.ndarray
    variance: np.ndarray
    shift: np.ndarray


def _single_input(net, x):
    chain = require_chain(net, "the PDLT recursions", "netfield.nlo.simulate", x)
    if chain.shared:
        raise UnsupportedProgram("net: the PDLT recursions are for a DNN (a fresh matrix per layer); this program "
                                 "shares its matrices across layers (an RNN). Use the one-loop theory "
                                 "(netfield.nlo) or netfield.nlo.simulate instead")
    net = chain.network()
    pats = parse_inputs(x, net.steps, "x")
    if pats.count != 1 or pats.sequential:
        raise ValueError(f"x: the PDLT recursions take one input pattern of shape (1, d), got {pats.count} patterns"
                         + (" given as a sequence" if pats.sequential else ""))
    return float(net.hyper("bias_var") + net.hyper("input_var") * np.dot(pats.x[0, 0], pats.x[0, 0]) / pats.dim), net


def pdlt(net, x) -> PDLTRecursion:
    """K, V, G1 of eqs. (P1)-(P4) for a DNN and one input; the last entry is the readout."""
    K, net = _single_input(net, x)
    z, w = gauss_hermite(1)
    z = z[:, 0]
    phi = net.activation.fn
    layers = [(float(net.hyper("weight_var")), float(net.hyper("bias_var")))] * (net.steps - 1)
    layers.append((float(net.hyper("readout_var")), float(net.hyper("readout_bias_var"))))
    Ks, Vs, Gs = [K], [0.0], [0.0]
    for cw, cb in layers:
        h = np.sqrt(K) * z
        s2 = np.asarray(phi(h)) ** 2
        hh = h * h
        mean_s2 = w @ s2
        chi = cw / (2 * K**2) * (w @ (s2 * (hh - K)))
        V_next = cw**2 * (w @ (s2 * s2) - mean_s2**2) + chi**2 * Vs[-1]
        G_next = chi * Gs[-1] + cw / 8 * Vs[-1] / K**4 * (w @ (s2 * (hh * hh - 6 * K * hh + 3 * K**2)))
        K = cb + cw * mean_s2
        Ks.append(K)
        Vs.append(V_next)
        Gs.append(G_next)
    return PDLTRecursion(np.array(Ks[1:]), np.array(Vs[1:]), np.array(Gs[1:]))


def deep_linear(net, x) -> PDLTRecursion:
    """Exact leading 1/n statistics (P5) of a deep linear DNN with bias_var = readout_bias_var = 0."""
    K1, net = _single_input(net, x)
    if net.activation.name != "linear" or float(net.hyper("bias_var")) != 0 or float(net.hyper("readout_bias_var")) != 0:
        raise ValueError("net: deep_linear needs activation 'linear' and bias_var = readout_bias_var = 0")
    L, cw, cr = net.steps, float(net.hyper("weight_var")), float(net.hyper("readout_var"))
    layers = np.arange(2, L + 2)
    K = K1 * cw ** (layers - 1.0)
    K[-1] = K1 * cw ** (L - 1.0) * cr
    return PDLTRecursion(K, 2 * (layers - 1) * K**2, np.zeros(L))


__all__ = ["PDLTRecursion", "deep_linear", "pdlt"]
