"""The kernel entries whose 1/n statistics netfield computes (docs/theory.md 4.1), in one index set.

Observable (docs/nlo.md, eq. N1): for hidden steps t, s >= 2 the *conditional* kernel

    K^_{ts}^{ab} = c_{ts}^{ab} + weight_var (1/n) sum_j phi(h_{t-1, j}(a)) phi(h_{s-1, j}(b)),

with the deterministic part c = bias_var [+ input_var x_t(a).x_s(b) / d] (RNN: every (t, s), shared bias
and input matrix; DNN: t = s only), and the readout kernel

    K^_out^{ab} = readout_bias_var + readout_var (1/n) sum_j phi(h_{T, j}(a)) phi(h_{T, j}(b)).

Both are c_i + scale_i (1/n) sum_j phi(h_{u_i, j}) phi(h_{v_i, j}) for a pair of *nodes* (step, pattern)
u_i, v_i of the Gaussian field h. At infinite width K^ -> the mean-field kernel; the hidden entries are
at the same time the entries of the covariance matrix of h (the order parameters C of docs/theory.md 4.1).
Entries with t = 1 or s = 1 are deterministic (no phi enters) and are not observables.

Node index of (step t, pattern a): ``a * T + (t - 1)`` (the row order of ``kernel(readout="all")``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..program import Network, parse_inputs
from ..program.shape import require_chain


@dataclass(frozen=True, eq=False)
class Observables:
    """Index set of the fluctuating kernel entries of ``net`` on inputs ``x``.

    Attributes:
        architecture, steps (T), patterns (P): the network and inputs.
        kind: (M,) "hidden" or "readout" per entry.
        t, s, a, b: (M,) steps (1-based; readout entries carry t = s = T) and patterns of each entry.
        u, v: (M,) nodes whose activations phi(h_u) phi(h_v) are averaged over neurons.
        scale: (M,) weight_var (hidden) or readout_var (readout).
        const: (M,) deterministic part c_i.
        base: (D, D) deterministic part of the covariance of h over the D = P T nodes.
        position: (M, 2) node pair (row, column) of C that a hidden entry is (-1, -1 for readout entries).
        hyper: dict of the network's hyper-parameters (floats).
    """

    architecture: str
    steps: int
    patterns: int
    kind: np.ndarray
    t: np.ndarray
    s: np.ndarray
    a: np.ndarray
    b: np.ndarray
    u: np.ndarray
    v: np.ndarray
    scale: np.ndarray
    const: np.ndarray
    base: np.ndarray
    position: np.ndarray
    hyper: dict

    def __len__(self) -> int:
        return len(self.kind)

    @property
    def nodes(self) -> int:
        return self.steps * self.patterns

    def node(self, t: int, a: int) -> int:
        return a * self.steps + (t - 1)

    @property
    def hidden(self) -> np.ndarray:
        """Boolean mask of the entries that are order parameters (feed the Gaussian field)."""
        return self.kind == "hidden"

    def index(self, kind: str, t: int, s: int, a: int = 0, b: int = 0) -> int:
        """Position of entry (t, s, a, b) of ``kind`` ("hidden" or "readout"); symmetric lookups allowed."""
        if kind not in ("hidden", "readout"):
            raise ValueError(f"kind must be one of 'hidden', 'readout', got {kind!r}")
        for tt, ss, aa, bb in ((t, s, a, b), (s, t, b, a)):
            hit = np.flatnonzero((self.kind == kind) & (self.t == tt) & (self.s == ss) & (self.a == aa)
                                 & (self.b == bb))
            if hit.size:
                return int(hit[0])
        if kind == "readout":
            hit = np.flatnonzero((self.kind == kind) & (self.a == b) & (self.b == a))
            if hit.size and t == s == self.steps:
                return int(hit[0])
        raise KeyError(f"no fluctuating {kind} entry (t={t}, s={s}, a={a}, b={b}); hidden entries need "
                       f"2 <= t, s <= {self.steps} (t = s for a DNN), readout entries t = s = {self.steps}, "
                       f"patterns 0..{self.patterns - 1}")

    def labels(self) -> list[str]:
        """Human-readable name of every entry, e.g. 'K(3,5|0,1)' or 'out(0,1)'."""
        return [f"out({a},{b})" if k == "readout" else f"K({t},{s}|{a},{b})"
                for k, t, s, a, b in zip(self.kind, self.t, self.s, self.a, self.b)]

    def values(self, phi_products: np.ndarray) -> np.ndarray:
        """Observables from (..., D, D) neuron averages (1/n) sum_j phi(h_u) phi(h_v): shape (..., M)."""
        return self.const + self.scale * phi_products[..., self.u, self.v]

    def covariance_matrix(self, values) -> np.ndarray:
        """(D, D) covariance of h with the hidden entries set to ``values`` (M,) (readout entries ignored)."""
        out = np.array(self.base, dtype=float)
        rows, cols = self.position[self.hidden].T
        vals = np.asarray(values, float)[self.hidden]
        out[rows, cols] = self.base[rows, cols] + vals - self.const[self.hidden]
        out[cols, rows] = out[rows, cols]
        return out


def observables(net: Network, x) -> Observables:
    """Enumerate the fluctuating kernel entries of ``net`` on ``x`` (module docstring, docs/nlo.md N1).

    Args:
        net: :func:`netfield.dnn` or :func:`netfield.rnn` network (concrete hyper-parameters).
        x: inputs (N, d) (fed at step 1) or (N, T, d) (fed at every step), all of the network's length.
    """
    chain = require_chain(net, "the 1/n one-loop theory", "netfield.nlo.simulate", x)
    net = chain.network()
    pats = parse_inputs(x, net.steps, "x")
    T, P = net.steps, pats.count
    if not (pats.lengths == T).all():
        raise ValueError(f"x: the 1/n theory needs every sequence to have the network's {T} steps, got lengths "
                         f"{sorted({int(v) for v in pats.lengths})}")
    hyper = {k: float(net.hyper(k)) for k in ("weight_var", "bias_var", "input_var", "readout_var",
                                               "readout_bias_var")}
    shared = chain.shared
    xin = np.zeros((P, T, pats.dim))
    xin[:, : pats.x.shape[1]] = pats.x if pats.sequential else pats.x[:, :1]
    gram = np.einsum("atk,bsk->atbs", xin, xin) / pats.dim  # (P, T, P, T)

    D = P * T
    base = np.zeros((D, D))
    for a in range(P):
        for t in range(1, T + 1):
            for b in range(P):
                for s in range(1, T + 1):
                    if shared or t == s:
                        base[a * T + t - 1, b * T + s - 1] = hyper["bias_var"] + hyper["input_var"] * gram[a, t - 1, b, s - 1]

    rows = []  # (kind, t, s, a, b)
    for t in range(2, T + 1):
        for s in range(t, T + 1):
            if s != t and not shared:
                continue
            for a in range(P):
                for b in range(a if s == t else 0, P):
                    rows.append(("hidden", t, s, a, b))
    for a in range(P):
        for b in range(a, P):
            rows.append(("readout", T, T, a, b))
    kind = np.array([r[0] for r in rows])
    t, s, a, b = (np.array([r[i] for r in rows], int) for i in range(1, 5))
    hidden = kind == "hidden"
    u = np.where(hidden, a * T + t - 2, a * T + T - 1)
    v = np.where(hidden, b * T + s - 2, b * T + T - 1)
    scale = np.where(hidden, hyper["weight_var"], hyper["readout_var"])
    pos = np.where(hidden[:, None], np.stack([a * T + t - 1, b * T + s - 1], 1), -1)
    const = np.where(hidden, base[np.maximum(pos[:, 0], 0), np.maximum(pos[:, 1], 0)], hyper["readout_bias_var"])
    return Observables(chain.kind, T, P, kind, t, s, a, b, u, v, scale.astype(float), const.astype(float),
                       base, pos, hyper)


def readout_observables(net: Network, x) -> Observables:
    """The fluctuating entries of any program without a 1/n theory: its readout kernel entries
    K^(f_r(a), f_r'(b)) = var_V (1/n) sum_j h_j h_j' + var_bo for every pair of output rows of
    ``kernel(net, x, readout="all")`` (one output per pattern, or one per step of a sequence);
    scale 1 and const 0: the value is the sampled conditional readout kernel itself."""
    from ..meanfield.result import readout_rows

    program = net.program(x)
    rows = readout_rows(program, "all")
    steps_of = {}
    for r, a in rows:
        steps_of[a] = steps_of.get(a, 0) + 1
    step = [sum(1 for rr, aa in rows[:k] if aa == a) + 1 for k, (_, a) in enumerate(rows)]
    iu, iv = np.triu_indices(len(rows))
    T, P = max(steps_of.values()), len(steps_of)
    m = len(iu)
    pattern = np.array([a for _, a in rows])
    return Observables(net.name, T, P, np.array(["readout"] * m), np.array(step)[iu], np.array(step)[iv],
                       pattern[iu], pattern[iv], iu, iv, np.ones(m), np.zeros(m), np.zeros((len(rows),) * 2),
                       -np.ones((m, 2), int), {k: float(v) for k, v in net.hyper_parameters.items()})


__all__ = ["Observables", "observables", "readout_observables"]
