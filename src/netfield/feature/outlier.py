"""The outlier eigenvalues of a trained RNN's recurrent matrix W predicted by the saddle point
(docs/feature.md F13).

Given all trajectories of a width-n network, each row of W is Gaussian (its prior) conditioned on the
linear constraints h_s = W phi(h_{s-1}) + input_s (s = 2..T, every pattern), so

    W = A + W0 P_perp,   A = (H - In) (Phi^T Phi)^-1 Phi^T                                          (F13)

with W0 a fresh iid N(0, weight_var / n) matrix, P_perp the projector off the span of the columns of
Phi = [phi(h_{s-1}(mu))] (n x (T-1) P) and H - In the recurrent inputs eta_s(mu). The nonzero
eigenvalues of the rank-(T-1)P matrix A are those of M = (Phi^T Phi)^-1 Phi^T (H - In), and for an iid
W0 the eigenvalues of W outside its bulk (radius sqrt(weight_var)) converge to those of M outside it. At
the saddle point (1/n) Phi^T Phi -> Q = <phi_{t-1} phi_{s-1}^T> and (1/n) Phi^T (H - In) -> R =
<phi_{t-1} eta_s^T> under the single-site law, with E[eta | h] = (C - C_in) C^-1 h (the recurrent and
input parts of the Gaussian field are independent and the tilt acts on h only):

    outliers = eigenvalues of M = Q^-1 R with |lambda| > sqrt(weight_var)

The averages are taken over Markov-chain draws of the single-site law (:mod:`netfield.feature.single_site`)
at the solution; the error is the spread over 8 groups of chains.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from ..program.shape import require_chain
from .single_site import factors, sample_single_site
from .theory import FeatureResult, _matrix, _pack

GROUPS = 8


@dataclass(frozen=True)
class WeightOutliers:
    """Eigenvalues of M = Q^-1 R (F13), largest modulus first, with their errors; ``outliers`` those beyond
    ``bulk_radius`` = sqrt(weight_var)."""

    eigenvalues: np.ndarray
    eigenvalue_errors: np.ndarray
    bulk_radius: float

    @property
    def outliers(self) -> np.ndarray:
        return self.eigenvalues[np.abs(self.eigenvalues) > self.bulk_radius]


def _leading(xi, chol, C, C_in, T, P, fn):
    h = xi @ chol.T
    phi = np.asarray(fn(jnp.asarray(h)))
    eta = h @ np.linalg.solve(C, C - C_in)  # E[eta | h], rows
    past, now = np.arange(0, (T - 1) * P), np.arange(P, T * P)  # phi at steps 1..T-1, eta at steps 2..T
    Q = phi[:, past].T @ phi[:, past] / len(h)
    R = phi[:, past].T @ eta[:, now] / len(h)
    ev = np.linalg.eigvals(np.linalg.solve(Q, R))
    return ev[np.argsort(-np.abs(ev))]


def weight_outliers(result: FeatureResult, *, chains: int = 256, draws: int = 400, seed: int = 0) -> WeightOutliers:
    """Predicted outlier eigenvalues of the recurrent matrix of an RNN at the saddle point ``result``
    (F13; e.g. :func:`netfield.feature.transition.broken_solution`). Cost: ``chains`` x ``draws``
    Markov-chain draws of the single-site law (seconds for a few patterns and steps)."""
    prob = result.problem
    chain = require_chain(prob.net, "the outlier theory of W", "netfield.feature.posterior_samples")
    if not chain.shared or prob.T < 2:
        raise ValueError(f"weight_outliers needs an RNN with at least 2 steps (one shared W), got {prob.net!r}")
    T, P = prob.T, prob.P
    v = _pack(prob, jnp.asarray(result.base), jnp.asarray(result.conjugate), jnp.asarray(result.readout_conjugate))
    d = sample_single_site(prob, v, chains=chains, draws=draws, warmup=200, key=jax.random.PRNGKey(seed))
    chol = np.asarray(factors(prob, v)[0])
    C = np.asarray(_matrix(jnp.asarray(result.base)))
    C = 0.5 * (C + C.T)
    C_in = np.asarray(_matrix(jnp.asarray(prob.c_in)))
    fn = prob.net.activation.fn
    ev = _leading(d.xi.reshape(-1, T * P), chol, C, C_in, T, P, fn)
    size = chains // GROUPS
    parts = np.array([_leading(d.xi[:, g * size:(g + 1) * size].reshape(-1, T * P), chol, C, C_in, T, P, fn)
                      for g in range(GROUPS)])
    err = np.std(np.abs(parts), axis=0, ddof=1) / np.sqrt(GROUPS)
    return WeightOutliers(ev, err, float(np.sqrt(prob.net.weight_var)))
