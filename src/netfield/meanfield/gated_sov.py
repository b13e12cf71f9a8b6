r"""GRU states with erf gates by separation of variables (docs/tensor_programs.md, back-end B6, eqs. G3, G4).

With erf gates sig(z) = (1 + erf(z)) / 2 = Phi(sqrt 2 z), each gate is the probability of a
*firing* event: sig(z_t) = P(Y_t <= 0 | z) with Y_t = E_t - sqrt(2) z_t and E_t ~ N(0, 1)
independent (one E per factor: the two copies of a sequence paired with itself get independent E's).
The gate weight w_{j,t} = sig(z_j) prod_{l=j+1..t} (1 - sig(z_l)) of eq. (G1) is then the probability
that the last firing up to t happened at j, and

    E[w_{j,t}(a) w_{k,s}(b)] = P(Y^a_j <= 0 < Y^a_{j+1}, ..., Y^a_t;  Y^b_k <= 0 < Y^b_{k+1}, ..., Y^b_s),
    Cov(Y) = I + 2 Cov(z)   (the update gates of both sequences up to the current step).        (G3)

Ordering the variables of entry (t, s) as the *spine* b_s, b_{s-1}, ..., b_k (no firing, then a firing
at k) followed by a_t, a_{t-1}, ..., a_0 (no firing), the probabilities of the last firing of a at every
j are the first-exceedance probabilities of one separation-of-variables pass (eq. M8), so

    E[h_t(a) h_s(b)] = sum_k  SOV_pass(t, s, k) [ sum_j E[phi(c_j(a)) phi(c_k(b))] P(J_t(a) = j, J_s(b) = k) ]   (G4)

with one pass per firing time k of the shorter side (the roles of a and b swapped when s > t). Each
pass integrates a smooth bounded function (the constraint is built into the sampling), so its error
is orders of magnitude below that of the trajectory integral (G2) at the same number of points:
GP4A's GRU on 8 x 5 6.7e-7 at 2^14 points per pass (qmc_points=2**18), 2.6e-6 at 2^12 per pass
(B5: 2.2e-4 at 2^12 points).

Cost: pairs x replicates x qmc_points x sum_{t,s} (min(t,s) + 1)(max(t,s) + 1 + ...) x (2T + 2 special
functions), about (T(T+1)/2)^2 pass-dimensions per pair: T^4 / 4 instead of B5's T^3; the accuracy
lever is ``qmc_points``.
"""

from __future__ import annotations

import functools

import numpy as np

from .gated import _candidate_moments

DIAG_BOOST = 2  # diagonal pairs (each entry's gate covariances use them) get 2x the points
POINT_SHARE = 16  # a pass runs qmc_points / 16 points (at least 16): at T = 5 below B5's time, ~5x its accuracy
ORTHANT_MAX_STEPS = 8  # longer chains: B5 (B6 costs ~T^4, B5 ~T^3; equal accuracy per second near T = 9)
_PAIR_BYTES = 1 << 28  # working memory (factors of every pass) per chunk of pairs


@functools.lru_cache(maxsize=64)
def step_plan(T: int, m: int, same: bool):
    """Static description of the passes of step m (entries with max(t, s) = m).

    Variables of the pair are numbered side * (m + 1) + time (side 0: a, 1: b). Returns numpy arrays
    idx (passes, D) variable of each position, sign (passes, D) W = sign * Y, kind (passes, D)
    (0 padding, 1 constraint, 2 record), hj / hk (passes, D) candidate-moment indices of each record,
    entry (passes,) the flat index t * T + s of the S entry the pass adds to, with D = 2 (m + 1).
    """
    n1 = m + 1
    D = 2 * n1
    entries = [(m, s) for s in range(n1)] if same else [(m, s) for s in range(n1)] + [(t, m) for t in range(m)]
    rows = []
    for t, s in entries:
        spine_b = s <= t  # the shorter side carries the branches
        short, long_ = (s, t) if spine_b else (t, s)
        sp_side, rec_side = (1, 0) if spine_b else (0, 1)
        for k in range(short + 1):  # the spine fires last at k
            idx = [sp_side * n1 + l for l in range(short, k - 1, -1)] + [rec_side * n1 + l for l in range(long_, -1, -1)]
            sign = [-1.0] * (short - k) + [1.0] + [-1.0] * (long_ + 1)
            kind = [1] * (short - k + 1) + [2] * (long_ + 1)
            rec_t = [0] * (short - k + 1) + list(range(long_, -1, -1))
            hj = [0] * (short - k + 1) + (rec_t[short - k + 1:] if spine_b else [k] * (long_ + 1))
            hk = [0] * (short - k + 1) + ([k] * (long_ + 1) if spine_b else rec_t[short - k + 1:])
            pad = D - len(idx)
            rows.append((idx + [0] * pad, sign + [0.0] * pad, kind + [0] * pad, hj + [0] * pad, hk + [0] * pad, t * T + s))
    rows.sort(key=lambda row: sum(k > 0 for k in row[2]))  # by length: chunks of similar passes (sov_accumulate)
    idx, sign, kind, hj, hk, entry = (np.asarray(c) for c in zip(*rows))
    return idx, sign, kind, hj, hk, entry


def orthant_points(points: int) -> int:
    """Points per replicate of every pass for the engine's ``qmc_points`` (a power of 2)."""
    return max(16, points // POINT_SHARE)


def chunk_size(T: int, replicates: int, pairs: int) -> int:
    """Pairs per call of the jitted kernel: the factors of all passes of the last step in _PAIR_BYTES."""
    passes = len(step_plan(T, T - 1, False)[0])
    per_pair = 4 * replicates * passes * (2 * T) ** 2 * 8
    return int(max(1, min(pairs, _PAIR_BYTES // per_pair)))


@functools.lru_cache(maxsize=32)
def sov_pair_kernel(T, same, key, method, has_reset):
    """The jitted eq. (G4) for one chunk of row pairs, all steps: (u, fams, saa, sbb) -> (1, R, B, T, T)."""
    import jax
    import jax.numpy as jnp

    from ..gauss.sov import sov_accumulate
    from .gated import _shifted, fam_cov

    _, reset_gate, activation = key

    def run(u, fams, saa, sbb):
        R, B = fams["z"][1].shape[:2]
        S = jnp.zeros((R, B, T, T))
        for m in range(T):
            n1, D = m + 1, 2 * (m + 1)
            Sp = {"ab": _shifted(S), "aa": _shifted(S if same else saa[0]), "bb": _shifted(S if same else sbb[0])}
            kz = {side: fam_cov(fams["z"], side, Sp)[..., :n1, :n1] for side in ("aa", "bb", "ab")}
            kab, kbb = (kz["aa"], kz["aa"]) if same else (kz["ab"], kz["bb"])
            cy = 2.0 * jnp.concatenate([jnp.concatenate([kz["aa"], kab], -1),
                                        jnp.concatenate([jnp.swapaxes(kab, -1, -2), kbb], -1)], -2)
            cy = cy + jnp.eye(D)  # Cov(Y) of eq. (G3), (R, B, D, D)
            hc = _candidate_moments(fams, Sp, n1, activation, reset_gate, has_reset, method)  # (R, B, n1, n1)
            idx, sign, kind, hj, hk, entry = step_plan(T, m, same)
            npass = idx.shape[0]
            pad = kind == 0
            c = cy[:, :, idx[:, :, None], idx[:, None, :]] * (sign[:, :, None] * sign[:, None, :])
            c = jnp.where((pad[:, :, None] | pad[:, None, :]), np.eye(D), c)  # padding: identity
            chol = jnp.linalg.cholesky(jnp.swapaxes(c, 1, 2))  # (R, npass, B, D, D): pass-major, by length
            w = jnp.where(kind[:, None] == 2, jnp.swapaxes(hc[:, :, hj, hk], 1, 2), 0.0)  # (R, npass, B, D)
            est = sov_accumulate(chol.reshape(R, npass * B, D, D), np.repeat(kind, B, axis=0),
                                 w.reshape(R, npass * B, D), u[:, :, :D])
            onehot = np.zeros((npass, T * T))
            onehot[np.arange(npass), entry] = 1.0
            vals = jnp.einsum("rpb,pe->rbe", est.reshape(R, npass, B), onehot).reshape(R, B, T, T)  # max(t, s) = m
            mask = np.zeros((T, T), bool)
            mask[m, :n1] = True
            if same:
                vals = vals + jnp.swapaxes(vals, -1, -2) * (1.0 - np.eye(T))
                mask[:n1, m] = True
            else:
                mask[:m, m] = True
            S = jnp.where(mask, vals, S)
        return S[None]

    return jax.jit(run)
