"""Next-to-leading order in 1/n: the one-loop formalism of docs/theory.md 4.1 for DNNs and RNNs (docs/nlo.md).

For the observables of :mod:`netfield.nlo.observables` (K^_i = c_i + (1/n) sum_j f_i(h_j)) and the
mean-field Gaussian h ~ N(0, C*), with single-site averages in that Gaussian (RNN: cross-time included):

    J_ib   = d<f_i>/dC_b                     (response; b runs over the hidden order parameters)
    N_ij   = Cov(f_i(h), f_j(h))             (single-site noise)
    H_i,bc = d^2<f_i>/dC_b dC_c
    R      = (I - J)^{-1}
    n Cov(K^_i, K^_j)      -> Sigma = R N R^T                                             (N3)
    n (E[K^_i] - K*_i)     -> [R ((1/2) H:Sigma + M)]_i,  M_i = sum_{j,c} dN_ij/dC_c R_cj   (N4, N5)

Derivatives come from JAX autodiff of Gaussian integrals through a Cholesky factor (Price's theorem under
the quadrature rule of :mod:`netfield.nlo.moments`), never from finite differences.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np

from ..program.shape import require_chain
from ..storage import Storable
from .moments import ORDERS, canonical, triu_pairs, value_and_grad_fn, value_grad_hessian_fn
from .observables import Observables, observables

CHUNK_NODES = 1 << 22  # quadrature nodes x batch entries evaluated at once (~ 100 MB per array)


def _batched(fn, thetas: np.ndarray, quad_nodes: int):
    """Apply a vmapped moment function in fixed-size (padded) chunks: one compilation per pattern."""
    size = max(1, min(256, CHUNK_NODES // max(quad_nodes, 1)))
    size = 1 << (size.bit_length() - 1)
    size = min(size, 1 << max(0, (len(thetas) - 1).bit_length()))
    outs = []
    for start in range(0, len(thetas), size):
        part = thetas[start:start + size]
        pad = np.concatenate([part, np.repeat(part[:1], size - len(part), 0)]) if len(part) < size else part
        res = fn(jnp.asarray(pad))
        outs.append([np.asarray(r)[: len(part)] for r in res])
    return [np.concatenate([o[i] for o in outs]) for i in range(len(outs[0]))]


def _check_smooth(net):
    act = net.activation
    if act.kinks or act.jumps:
        where = ", ".join(f"{v:g}" for v in act.breakpoints)
        raise ValueError(f"activation: the 1/n theory needs second derivatives of Gaussian averages of a smooth "
                         f"activation; {act.name!r} has kinks or jumps at {where}. Use a smooth activation (erf, tanh, "
                         f"linear, gelu, softplus, ...) or the simulation estimator netfield.nlo.simulate")


def _subcov(C: np.ndarray, nodes: tuple):
    k = len(nodes)
    sub = C[np.ix_(nodes, nodes)]
    rows, cols = triu_pairs(k)
    return sub[rows, cols]


def _check_pd(C: np.ndarray, nodes: tuple, obs: Observables):
    sub = C[np.ix_(nodes, nodes)]
    names = [f"(step {n % obs.steps + 1}, pattern {n // obs.steps})" for n in nodes]
    scale = float(np.max(np.diag(sub)))
    if not scale > 0:
        raise ValueError(f"x: the pre-activations at {', '.join(names)} have zero mean-field variance (zero bias_var "
                         f"and zero inputs); the 1/n expansion needs positive variances: raise bias_var or input_var")
    # relative to the variances' own scale: tiny inputs with a tiny bias_var are not 'duplicates'
    if np.linalg.eigvalsh(sub / scale)[0] <= 1e-12:
        raise ValueError(f"x: the mean-field covariance of the pre-activations at {', '.join(names)} is singular "
                         f"(duplicate or collinear input patterns); the 1/n expansion needs distinct patterns: "
                         f"remove duplicates or raise bias_var")


def _two_point(phi, C: np.ndarray, obs: Observables, var_of: np.ndarray, with_hessian: bool):
    """<phi(h_u) phi(h_v)> for every entry, and J, H scattered onto the hidden variables."""
    M, Mh = len(obs), int(obs.hidden.sum())
    hidden_idx = np.full(M, -1)
    hidden_idx[obs.hidden] = np.arange(Mh)
    means = np.empty(M)
    J = np.zeros((M, Mh))
    H = np.zeros((M, Mh, Mh)) if with_hessian else None
    groups = defaultdict(list)
    for i in range(M):
        nodes, slots = canonical((obs.u[i], obs.v[i]))
        groups[(nodes.__len__(), slots)].append((i, nodes))
    for (k, slots), items in groups.items():
        thetas = np.stack([_subcov(C, nodes) for _, nodes in items])
        fn = (value_grad_hessian_fn if with_hessian else value_and_grad_fn)(phi, k, slots)
        res = _batched(fn, thetas, ORDERS[k] ** k)
        rows, cols = triu_pairs(k)
        for r, (i, nodes) in enumerate(items):
            means[i] = res[0][r]
            var = [hidden_idx[var_of[nodes[p], nodes[q]]] if var_of[nodes[p], nodes[q]] >= 0 else -1
                   for p, q in zip(rows, cols)]
            for e, ve in enumerate(var):
                if ve >= 0:
                    J[i, ve] += obs.scale[i] * res[1][r, e]
                    if with_hessian:
                        for f, vf in enumerate(var):
                            if vf >= 0:
                                H[i, ve, vf] += obs.scale[i] * res[2][r, e, f]
    return means, J, H


def mean_field_covariance(net, obs: Observables, phi):
    """Fixed point C* of the hidden entries (causal: T sweeps are exact) and the full (D, D) covariance."""
    var_of = _variable_map(obs)
    values = obs.const.copy()
    for _ in range(obs.steps):
        C = obs.covariance_matrix(values)
        means, _, _ = _two_point(phi, C, obs, var_of, with_hessian=False)
        values = obs.const + obs.scale * means
    return values, obs.covariance_matrix(values), var_of


def _variable_map(obs: Observables) -> np.ndarray:
    """(D, D) -> index (into all entries) of the hidden order parameter that is this covariance entry, or -1."""
    out = np.full((obs.nodes, obs.nodes), -1)
    for i in np.flatnonzero(obs.hidden):
        r, c = obs.position[i]
        out[r, c] = out[c, r] = i
    return out


@dataclass(frozen=True, eq=False)
class NLOResult(Storable):
    """1/n statistics of the kernel entries ``observables`` (docs/nlo.md N3-N5).

    ``r.save(path, network=net)`` / ``NLOResult.load(path)``: a portable .npz file (:mod:`netfield.storage`).

    Attributes:
        observables: the index set (labels via ``observables.labels()``).
        kernel: (M,) mean-field values K*.
        mean_shift: (M,) lim n (E[K^] - K*).
        covariance: (M, M) lim n Cov(K^_i, K^_j) (the four-point vertex; single-input DNN: PDLT's V).
        response: (M, M) R = (I - J)^{-1} (columns of readout entries are unit vectors).
        noise: (M, M) N; hessian_term: (M,) (1/2) H:Sigma; noise_response: (M,) M (the RNN term N5).
        mean_shift_without_m: R (1/2) H:Sigma, the shift with the noise-response term left out.
    """

    observables: Observables
    kernel: np.ndarray
    mean_shift: np.ndarray
    covariance: np.ndarray
    response: np.ndarray
    noise: np.ndarray
    hessian_term: np.ndarray
    noise_response: np.ndarray
    mean_shift_without_m: np.ndarray

    _storage_types = (Observables,)

    def index(self, kind: str = "hidden", t: int | None = None, s: int | None = None, a: int = 0, b: int = 0) -> int:
        T = self.observables.steps
        t = T if t is None else t
        return self.observables.index(kind, t, t if s is None else s, a, b)

    @property
    def variance(self) -> np.ndarray:
        """(M,) lim n Var(K^_i)."""
        return np.diag(self.covariance).copy()

    def mean_at(self, width) -> np.ndarray:
        """E[K^] at width n to O(1/n): K* + mean_shift / n."""
        return self.kernel + self.mean_shift / _width(width)

    def std_at(self, width) -> np.ndarray:
        """Standard deviation of K^ at width n to leading order: sqrt(Var / n)."""
        return np.sqrt(np.maximum(self.variance, 0.0) / _width(width))

    def covariance_at(self, width) -> np.ndarray:
        return self.covariance / _width(width)

    def to_dict(self) -> dict:
        o = self.observables
        return {"labels": o.labels(), "kind": o.kind.tolist(), "t": o.t.tolist(), "s": o.s.tolist(),
                "a": o.a.tolist(), "b": o.b.tolist(), "kernel": self.kernel.tolist(),
                "mean_shift": self.mean_shift.tolist(), "variance": self.variance.tolist(),
                "covariance": self.covariance.tolist(), "mean_shift_without_m": self.mean_shift_without_m.tolist()}


def _width(width):
    """A width n > 0 (a number or an array of them, broadcast against the entries)."""
    w = np.asarray(width, float)
    if w.size == 0 or not np.all(np.isfinite(w)) or np.any(w <= 0):
        raise ValueError(f"width must be a positive number (or an array of them), got {width!r}")
    return w if w.ndim else float(w)


def one_loop(net, x) -> NLOResult:
    """Leading 1/n corrections of the kernels of ``net`` on ``x`` (docs/theory.md 4.1, docs/nlo.md N1-N6).

    Args:
        net: :func:`netfield.dnn` or :func:`netfield.rnn` with a smooth activation and concrete hyper-parameters.
        x: inputs (N, d) (step 1 only) or (N, T, d) (every step); cost grows like (N T)^4 (kept small: N T <= ~16).

    Returns:
        :class:`NLOResult` for every fluctuating kernel entry (hidden steps and time pairs, readout).

    Example:
        >>> import numpy as np, netfield
        >>> r = netfield.one_loop(netfield.dnn(3, "tanh", weight_var=1.5, bias_var=0.5), np.ones((1, 1)))
        >>> r.variance.shape == r.mean_shift.shape
        True
    """
    obs = observables(net, x)
    net = require_chain(net, "the 1/n one-loop theory", "netfield.nlo.simulate", x).network()
    _check_smooth(net)
    if obs.nodes > 24:
        raise ValueError(f"x: {obs.patterns} patterns x {obs.steps} steps = {obs.nodes} Gaussian nodes; the one-loop "
                         f"theory needs all four-point averages (cost ~ nodes^4) and accepts at most 24 nodes")
    phi = net.activation.fn
    kernel, C, var_of = mean_field_covariance(net, obs, phi)
    for i in range(len(obs)):
        _check_pd(C, canonical((obs.u[i], obs.v[i]))[0], obs)
    means, J_h, H = _two_point(phi, C, obs, var_of, with_hessian=True)
    M_all = len(obs)
    hidden = np.flatnonzero(obs.hidden)
    J = np.zeros((M_all, M_all))
    J[:, hidden] = J_h
    IJ = np.eye(M_all) - J
    R = np.linalg.solve(IJ, np.eye(M_all))
    if not np.all(np.isfinite(R)) or np.linalg.cond(IJ) > 1e12:
        raise ValueError("net: the linear response I - J of the kernel recursion is singular; the 1/n expansion "
                         "does not exist at these hyper-parameters")

    mu = obs.scale * means  # <f_i>
    N, Mterm, coupled = _noise(phi, C, obs, var_of, mu, R)
    JR = J @ R
    # d(mu_i mu_j)/dC_c = J_ic mu_j + mu_i J_jc, for the pairs whose noise covariance is not structurally zero
    Mterm = Mterm - (coupled * JR) @ mu - mu * (coupled @ np.diag(JR))
    Sigma = R @ N @ R.T
    Sh = Sigma[np.ix_(hidden, hidden)]
    half_h = 0.5 * np.einsum("ibc,bc->i", H, Sh)
    shift = R @ (half_h + Mterm)
    shift_no_m = R @ half_h
    result = NLOResult(obs, kernel, shift, Sigma, R, N, half_h, Mterm, shift_no_m)
    for name in ("mean_shift", "covariance"):
        if not np.all(np.isfinite(getattr(result, name))):
            raise FloatingPointError(f"nlo: non-finite {name}; please report this input")
    return result


nlo = one_loop  # the original name (netfield.nlo.nlo), kept as an alias


def _noise(phi, C, obs: Observables, var_of, mu, R):
    """N_ij = Cov(f_i, f_j), the part sum_{j,c} d<f_i f_j>/dC_c R_cj of M_i (the rest is in nlo), and the
    (M, M) mask of pairs that are not structurally independent (skipped pairs contribute exactly zero)."""
    M = len(obs)
    N = np.zeros((M, M))
    Mterm = np.zeros(M)
    coupled = np.zeros((M, M))
    groups = defaultdict(list)
    for i in range(M):
        for j in range(i, M):
            ni, nj = [obs.u[i], obs.v[i]], [obs.u[j], obs.v[j]]
            if not np.any(C[np.ix_(ni, nj)]) and np.all(var_of[np.ix_(ni, nj)] < 0):
                continue  # independent nodes (DNN layers): N_ij = 0 and no order parameter couples them
            coupled[i, j] = coupled[j, i] = 1.0
            nodes, slots = canonical((obs.u[i], obs.v[i], obs.u[j], obs.v[j]))
            groups[(len(nodes), tuple(sorted(slots)))].append((i, j, nodes))
    for (k, slots), items in groups.items():
        thetas = np.stack([_subcov(C, nodes) for _, _, nodes in items])
        vals, grads = _batched(value_and_grad_fn(phi, k, slots), thetas, ORDERS[k] ** k)
        rows, cols = triu_pairs(k)
        for r, (i, j, nodes) in enumerate(items):
            ss = obs.scale[i] * obs.scale[j]
            N[i, j] = N[j, i] = ss * vals[r] - mu[i] * mu[j]
            for e, (p, q) in enumerate(zip(rows, cols)):
                c = var_of[nodes[p], nodes[q]]
                if c >= 0:
                    Mterm[i] += ss * grads[r, e] * R[c, j]
                    if j != i:
                        Mterm[j] += ss * grads[r, e] * R[c, i]
    return N, Mterm, coupled


__all__ = ["NLOResult", "mean_field_covariance", "nlo", "one_loop"]
