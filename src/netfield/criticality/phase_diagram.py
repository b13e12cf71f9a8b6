"""Phase diagram in the (weight_var, bias_var) plane: the critical line chi_1 = 1 by continuation,
and maps of chi_1, the Lyapunov exponent and the correlation depth scale xi_c (docs/criticality.md,
section 3).

Critical line (C10). With sigma^2 = bias_var + drive (drive = input_var * input_power, (C0)), the
critical line is the set of (weight_var, bias_var) at which the attracting length fixed point q*
has chi_1 = 1, i.e. the zero set of

    F(w, b, q) = ( w P(q) + b + drive - q ,  w D(q) - 1 )        P = <phi^2>, D = <phi'^2>  (C10)

a curve in (w, b, q) space. :func:`critical_line` traces it by pseudo-arclength continuation
(predictor along the tangent, the null vector of dF; Newton corrector on F = 0 plus the arclength
condition; adaptive step), from a seed on the curve until it leaves the requested box, landing
exactly on the box boundary. The explicit parametrisation by q* of docs/theory.md 3.1,

    w(q*) = 1 / D(q*),     b(q*) = q* - w(q*) P(q*) - drive                                 (C11)

provides the seed and an independent check (tests).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from .._checks import check_positive_int, check_variance
from ..gauss import Activation, get_activation, pair
from .fixed_points import (
    CRITICAL_TOL,
    Q_DEGENERATE,
    Q_LARGE,
    Q_MAX,
    Q_TABLE,
    correlation_fixed_points,
    depth_scale,
    derivative_moment,
    second_moment,
    select_correlation_fixed_point,
)

PHASE_CODES = {"ordered": 0, "critical": 1, "chaotic": 2, "unbounded": 3}


# ---------------------------------------------------------------------------------------------
# the critical line

@dataclass(frozen=True, eq=False)
class CriticalLine:
    """Points of the critical line chi_1 = 1, in order along the curve.

    Attributes:
        activation: activation name.
        weight_var, bias_var, q_star: (K,) arrays of points on the line (C10).
        q_stable: (K,) bool, whether q* is an attracting fixed point of the length map there
            (only those points separate an ordered from a chaotic phase).
        drive: input_var * input_power, added to bias_var at every layer / step (C0).
        bias_max, weight_max: the box the line was traced in.
        newton_residual: largest |F| (C10) at the two end points (the interior points are Newton
            solutions with |F| < 1e-13 by construction).
        notes: remarks (e.g. no critical line for activations with infinite chi_1).
    """

    activation: str
    weight_var: np.ndarray
    bias_var: np.ndarray
    q_star: np.ndarray
    q_stable: np.ndarray
    drive: float
    bias_max: float
    weight_max: float
    newton_residual: float
    notes: tuple[str, ...] = field(default=())

    def __len__(self) -> int:
        return len(self.weight_var)

    def weight_var_at(self, bias_var: float) -> float:
        """weight_var on the line at a given bias_var (exact: corrector (C11) from the traced points)."""
        check_variance("bias_var", bias_var)
        return critical_weight_var(self.activation, bias_var, drive=self.drive, _line=self)

    def as_dict(self) -> dict:
        return {
            "activation": self.activation, "weight_var": self.weight_var.tolist(),
            "bias_var": self.bias_var.tolist(), "q_star": self.q_star.tolist(),
            "q_stable": self.q_stable.tolist(), "drive": self.drive, "newton_residual": self.newton_residual,
            "notes": list(self.notes),
        }


STENCIL = 1e-6   # relative step of the centred difference in q of Newton's Jacobian


def _stencil_moments(act: Activation, q: float, method: str):
    """P and D at q (1 - STENCIL, 1, 1 + STENCIL): one array call each (a fixed shape, so one
    compilation per activation, and the 1-D rule of ``pair`` on the diagonal)."""
    h = STENCIL * max(q, Q_DEGENERATE)
    qs = np.array([max(q - h, 0.0), q, q + h])
    return qs, np.asarray(second_moment(act, qs, method)), np.asarray(derivative_moment(act, qs, method))


@lru_cache(maxsize=64)
def _system(act: Activation, drive: float, method: str):
    """F (C10) and its Jacobian: exact in (w, b), a centred difference in q (the reported slopes
    of :func:`netfield.mean_field_criticality` are JAX derivatives; this Jacobian only drives Newton's method)."""

    def system(u):
        w, b, q = (float(v) for v in u)
        qs, P, D = _stencil_moments(act, max(q, 0.0), method)
        value = np.array([w * P[1] + b + drive - q, w * D[1] - 1.0])
        dq = qs[2] - qs[0]
        J = np.array([[P[1], 1.0, w * (P[2] - P[0]) / dq - 1.0],
                      [D[1], 0.0, w * (D[2] - D[0]) / dq]])
        return value, J

    return system


@lru_cache(maxsize=64)
def _tables(act: Activation, method: str):
    """P(q) and D(q) on Q_TABLE (one array shape for every use: one compilation per activation)."""
    return np.asarray(second_moment(act, Q_TABLE, method)), np.asarray(derivative_moment(act, Q_TABLE, method))


def _moments(act: Activation, q: float, method: str):
    """(P(q), D(q)) at one length (through the stencil: no new compilation)."""
    _, P, D = _stencil_moments(act, float(q), method)
    return float(P[1]), float(D[1])


def _q_param(act: Activation, q, drive: float, method: str):
    """(C11): weight_var and bias_var on the critical line with length fixed point q.

    ``q`` is either Q_TABLE itself (tabulated) or a scalar (evaluated through the stencil)."""
    if isinstance(q, np.ndarray) and q.shape == Q_TABLE.shape and np.array_equal(q, Q_TABLE):
        P, D = _tables(act, method)
    else:
        # the q -> 0+ limit at q* = 0 (zero-variance conventions of closed forms differ, e.g. relu')
        P, D = (np.array([v]) for v in _moments(act, max(float(q), Q_DEGENERATE), method))
        q = np.array([float(q)])
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.where(D > 0, 1.0 / D, np.inf)
        b = q - w * P - drive
    return w, b


def _tangent(J, previous=None):
    t = np.cross(J[0], J[1])
    norm = np.linalg.norm(t)
    if not np.isfinite(norm) or norm == 0:
        raise FloatingPointError("singular Jacobian on the critical line")
    t = t / norm
    if previous is not None and np.dot(t, previous) < 0:
        t = -t
    return t


def _newton(system, u, extra, tol=1e-13, iters=20):
    """Solve F(u) = 0 together with one extra scalar equation g(u) = 0 (value, gradient).

    Returns (u, J(u)) or None when Newton's method does not converge."""
    for _ in range(iters):
        F, J = system(u)
        g, dg = extra(u)
        r = np.append(F, g)
        if not np.all(np.isfinite(r)) or not np.all(np.isfinite(J)):
            return None
        if np.max(np.abs(r)) < tol:
            return u, J
        A = np.vstack([J, dg])
        try:
            u = u - np.linalg.solve(A, r)
        except np.linalg.LinAlgError:
            return None
    F, J = system(u)
    return (u, J) if np.max(np.abs(F)) < 1e-10 else None


def critical_line(activation, *, bias_max: float = 0.3, weight_max: float = 4.0, input_var: float = 1.0,
                  input_power: float = 0.0, step: float | None = None, max_points: int = 400,
                  method: str = "auto") -> CriticalLine:
    """The critical line chi_1 = 1 in the (weight_var, bias_var) plane, by pseudo-arclength continuation.

    Args:
        activation: name, :class:`netfield.Activation` or callable.
        bias_max, weight_max: the box 0 <= bias_var <= bias_max, 0 < weight_var <= weight_max.
        input_var, input_power: input drive at every layer / step (C0); the line is shifted by
            -input_var * input_power in bias_var.
        step: initial arclength step (default: 1/100 of the box diagonal); adapted along the way.
        max_points: upper bound on the number of continuation steps.

    Returns:
        :class:`CriticalLine`.

    Example:
        >>> from netfield.criticality import critical_line
        >>> line = critical_line("tanh", bias_max=0.1)
        >>> round(line.weight_var_at(0.05), 4)
        1.761
    """
    act = get_activation(activation)
    bias_max = float(check_variance("bias_max", bias_max, allow_zero=False))
    weight_max = float(check_variance("weight_max", weight_max, allow_zero=False))
    check_variance("input_var", input_var)
    check_variance("input_power", input_power)
    max_points = check_positive_int("max_points", max_points, minimum=2)
    drive = float(input_var) * float(input_power)
    diag = math.hypot(bias_max, weight_max)
    h = diag / 100.0 if step is None else float(check_variance("step", step, allow_zero=False))
    h_max = diag / 60.0

    def empty(note):
        z = np.zeros(0)
        return CriticalLine(act.name, z, z, z, np.zeros(0, bool), drive, bias_max, weight_max, 0.0, (note,))

    # seed: the explicit parametrisation (C11) on a coarse logarithmic q grid
    q_seed = Q_TABLE
    w_seed, b_seed = _q_param(act, q_seed, drive, method)
    inside = np.isfinite(w_seed) & (w_seed > 0) & (w_seed <= weight_max) & (b_seed >= 0) & (b_seed <= bias_max)
    if not inside.any():
        if np.all(np.isinf(_tables(act, method)[1])):
            return empty(f"chi_1 is infinite for {act.name!r} (phi' has a delta function): always chaotic, "
                         "no critical line")
        return empty(f"no point of the critical line in 0 <= bias_var <= {bias_max:g}, "
                     f"0 < weight_var <= {weight_max:g}")
    first = int(np.argmax(inside))          # seed: the middle of the first run of table points in the box
    last = first + int(np.argmin(np.append(inside[first:], False)))
    j = (first + last - 1) // 2
    u0 = np.array([w_seed[j], b_seed[j], q_seed[j]])
    system = _system(act, drive, method)
    start = _newton(system, u0, lambda u: (u[2] - q_seed[j], np.array([0.0, 0.0, 1.0])))
    if start is None:
        return empty("the continuation could not be started (singular system at the seed)")
    u0, J0 = start

    def in_box(u):
        return (0 <= u[1] <= bias_max) and (0 < u[0] <= weight_max) and (0 <= u[2] <= Q_MAX)

    branches = []
    for direction in (+1.0, -1.0):
        u, J = u0.copy(), J0
        t = direction * _tangent(J)
        hh = h
        pts = [(u.copy(), J)]
        for _ in range(max_points):
            pred = u + hh * t
            sol = _newton(system, pred, lambda v, p=pred, tt=t: (float(np.dot(tt, v - p)), tt), iters=8)
            if sol is None:
                hh *= 0.5
                if hh < 1e-10 * diag:
                    break
                continue
            if not in_box(sol[0]):
                landed = _land(act, u, sol[0], bias_max, weight_max, drive, method)
                if landed is not None:
                    pts.append((landed, system(np.array([landed[0], landed[1], max(landed[2], Q_DEGENERATE)]))[1]))
                break
            try:
                t_new = _tangent(sol[1], t)
            except FloatingPointError:
                break
            (u, J), t = sol, t_new
            pts.append((u.copy(), J))
            hh = min(1.5 * hh, h_max)
            if u[2] >= Q_MAX:
                break
        branches.append(pts)
    pts = branches[1][::-1] + branches[0][1:]
    arr = np.array([p for p, _ in pts])
    # dq'/dq = w P'(q*) = dF_1/dq + 1 (C6), from the Jacobian at each point
    slopes = np.array([J[0, 2] + 1.0 for _, J in pts])
    # drop consecutive duplicates in the plane (e.g. relu: the whole curve projects onto one point)
    # collapse runs of points that coincide in the plane; a run holding an end point (where the line
    # was landed on the box boundary) is represented by that end point
    gaps = np.hypot(np.diff(arr[:, 0]), np.diff(arr[:, 1])) > 1e-12 * diag
    starts = np.concatenate([[0], np.nonzero(gaps)[0] + 1])
    ends = np.concatenate([starts[1:] - 1, [len(arr) - 1]])
    chosen = [e if e == len(arr) - 1 else s for s, e in zip(starts, ends)]
    keep = np.zeros(len(arr), bool)
    keep[chosen] = True
    arr, slopes = arr[keep], slopes[keep]
    residual = max(float(np.max(np.abs(system(np.array([p[0], p[1], max(p[2], Q_DEGENERATE)]))[0])))
                   for p in (arr[0], arr[-1]))
    return CriticalLine(act.name, arr[:, 0], arr[:, 1], arr[:, 2], np.abs(slopes) < 1.0, drive,
                        bias_max, weight_max, residual)


def _land(act, inside, outside, bias_max, weight_max, drive, method):
    """The point where the line crosses the box boundary between two points on it: solve (C10)
    with the boundary equation, by Brent's method on the q parametrisation (C11) (bracketed)."""
    from scipy.optimize import brentq  # scipy.optimize (~0.1 s at import) loads on first use
    for index, bound in ((1, 0.0), (1, bias_max), (0, weight_max)):
        a, b = inside[index] - bound, outside[index] - bound
        if a * b > 0 or a == 0 and b == 0:
            continue
        q_in, q_out = float(inside[2]), max(float(outside[2]), 0.0)

        def g(q, index=index, bound=bound):
            w, bb = _q_param(act, q, drive, method)
            return float((w if index == 0 else bb)[0]) - bound

        gi, go = g(q_in), g(q_out) if q_out > 0 else (0.0 - drive - bound if index == 1 else math.inf)
        if q_out == 0.0 and index == 1:
            # q* -> 0: phi(0) = 0 gives b(0) = -drive (the end point of e.g. the tanh line at (1, 0))
            w0 = 1.0 / _moments(act, Q_DEGENERATE, method)[1]
            if abs(gi) > 0 and abs(go) == 0.0:
                return np.array([w0, bound, 0.0])
        if not (np.isfinite(gi) and np.isfinite(go)) or gi * go > 0:
            continue
        q = brentq(g, min(q_in, q_out), max(q_in, q_out), xtol=1e-15, rtol=1e-14)
        w, bb = _q_param(act, q, drive, method)
        point = np.array([float(w[0]), float(bb[0]), q])
        point[index] = bound          # the equation solved (residual ~1e-16 in that coordinate)
        return point
    if outside[1] < 0 <= inside[1] < 1e-12:
        # the line touches bias_var = 0 tangentially (e.g. erf, tanh as q* -> 0) and the crossing is
        # below rounding. With phi(0) = 0 and no drive it ends at q* -> 0, weight_var = 1 / D(0+);
        # otherwise at the inside point, on the boundary to within 1e-12
        P0, _ = _moments(act, 0.0, method)
        if drive == 0.0 and P0 == 0.0:
            return np.array([1.0 / _moments(act, Q_DEGENERATE, method)[1], 0.0, 0.0])
        return np.array([inside[0], 0.0, inside[2]])
    return None


def critical_weight_var(activation, bias_var: float, *, input_var: float = 1.0, input_power: float = 0.0,
                        drive: float | None = None, method: str = "auto", _line: CriticalLine | None = None) -> float:
    """weight_var on the critical line at a given bias_var: the root q* of b(q*) = bias_var (C11),
    bracketed on a logarithmic grid of q* and refined by Brent's method.

    Raises:
        ValueError: if no point of the line has this bias_var (e.g. relu for bias_var > 0).

    Example:
        >>> from netfield.criticality import critical_weight_var
        >>> round(critical_weight_var("tanh", 0.05), 4)
        1.761
        >>> critical_weight_var("relu", 0.0)
        2.0
    """
    from scipy.optimize import brentq
    act = get_activation(activation)
    check_variance("bias_var", bias_var)
    drive = float(input_var) * float(input_power) if drive is None else float(drive)
    qs = Q_TABLE
    w, b = _q_param(act, qs, drive, method)
    g = b - bias_var
    ok = np.isfinite(g) & np.isfinite(w)
    exact = ok & (np.abs(g) <= 1e-14 * max(1.0, bias_var))
    if exact.any():
        return float(w[np.argmax(exact)])
    for i in range(len(qs) - 1):
        if ok[i] and ok[i + 1] and g[i] * g[i + 1] < 0:
            q = brentq(lambda s: float(_q_param(act, s, drive, method)[1][0]) - bias_var, qs[i], qs[i + 1],
                       xtol=1e-15, rtol=1e-14)
            return float(_q_param(act, q, drive, method)[0][0])
    if bias_var == 0.0 and drive == 0.0:
        w0 = 1.0 / _moments(act, Q_DEGENERATE, method)[1]
        if np.isfinite(w0) and abs(_moments(act, 0.0, method)[0]) == 0.0:
            return w0
    raise ValueError(
        f"bias_var={bias_var!r} is not on the critical line of {act.name!r} for any length fixed point "
        f"q* in [{Q_TABLE[0]:g}, {Q_TABLE[-1]:g}] (the line's bias_var range there is "
        f"[{np.nanmin(np.where(ok, b, np.nan)):.4g}, {np.nanmax(np.where(ok, b, np.nan)):.4g}])"
    )


# ---------------------------------------------------------------------------------------------
# maps over a grid

@dataclass(frozen=True, eq=False)
class PhaseDiagram:
    """Maps of the mean-field criticality over a (weight_var, bias_var) grid plus the critical line.

    Attributes:
        weight_var: (nw,) grid; bias_var: (nb,) grid; maps have shape (nb, nw) (rows: bias_var).
        q_star, chi_1, lyapunov, c_star, chi_c, xi_c: maps (``inf`` where not finite: xi_c on the
            critical line, q* in the unbounded phase).
        phase: (nb, nw) int codes, :data:`PHASE_CODES`.
        line: the :class:`CriticalLine` traced by continuation.
    """

    activation: str
    weight_var: np.ndarray
    bias_var: np.ndarray
    q_star: np.ndarray
    chi_1: np.ndarray
    lyapunov: np.ndarray
    c_star: np.ndarray
    chi_c: np.ndarray
    xi_c: np.ndarray
    phase: np.ndarray
    line: CriticalLine
    drive: float = 0.0


def _grid_length_fixed_points(act, W, B, q0, method):
    """Vectorised (C1) fixed points on a grid and chi_1 there: the root of G(q) = w P(q) + b - q next
    to q0 in the direction of G(q0) (as :func:`~netfield.criticality.fixed_points.find_length_fixed_point`),
    bracketed on a table of P, refined by bisection on its cubic spline in log q; chi_1 = w D(q*)
    from a spline of a D table. Returns (q*, D(q*)); q* = inf where the length diverges."""
    from scipy.interpolate import CubicSpline  # loads on first use (import time)
    q_tab = Q_TABLE
    P, D = _tables(act, method)
    p_spline, d_spline = CubicSpline(np.log(q_tab), P), CubicSpline(np.log(q_tab), D)
    Pq0 = _moments(act, q0, method)[0]
    w, b = W.ravel(), B.ravel()
    G_tab = w[:, None] * P[None, :] - q_tab[None, :] + b[:, None]
    G0 = w * Pq0 + b - q0
    j0 = int(np.searchsorted(q_tab, q0))
    lo, hi = np.zeros_like(w), np.zeros_like(w)
    unbounded = np.zeros(w.shape, bool)
    for m in range(len(w)):
        if G0[m] > 0:
            above = np.nonzero(G_tab[m, j0:] <= 0)[0]
            if len(above) == 0:
                unbounded[m] = True
                continue
            k = j0 + above[0]
            lo[m], hi[m] = (q0 if k == j0 else q_tab[k - 1]), q_tab[k]
        else:
            below = np.nonzero(G_tab[m, :j0] >= 0)[0]
            if len(below) == 0:   # G < 0 down to Q_DEGENERATE: q* in [0, Q_DEGENERATE]
                continue
            k = below[-1]
            lo[m], hi[m] = q_tab[k], (q_tab[k + 1] if k + 1 < j0 else q0)

    def Gs(q):
        return w * p_spline(np.log(np.maximum(q, Q_DEGENERATE))) + b - q

    active = ~unbounded & (hi > lo)
    a, c = lo.copy(), hi.copy()
    ga = Gs(a)
    for _ in range(60):
        mid = 0.5 * (a + c)
        gm = Gs(mid)
        left = np.sign(gm) == np.sign(ga)
        a, ga = np.where(active & left, mid, a), np.where(active & left, gm, ga)
        c = np.where(active & ~left, mid, c)
    q_star = np.where(active, 0.5 * (a + c), 0.0)
    q_star[unbounded] = np.inf
    q_eval = np.where(unbounded, q_tab[-1], np.maximum(q_star, Q_DEGENERATE))
    D_star = d_spline(np.log(q_eval))
    if unbounded.any():
        D_star[unbounded] = _moments(act, Q_LARGE, method)[1]
    return q_star.reshape(W.shape), D_star.reshape(W.shape)


def _distributed_length_fixed_points(act, W, S, q0, method, client, workers, rows_per_task: int = 4):
    """:func:`_grid_length_fixed_points` for blocks of ``rows_per_task`` bias rows, each a task (every
    point's search is its own, so the blocks give the whole grid's bits)."""
    from ..distributed import executor

    starts = range(0, W.shape[0], rows_per_task)
    tasks = [(act, W[r:r + rows_per_task], S[r:r + rows_per_task], q0, method) for r in starts]
    with executor(client, workers) as ex:
        parts = ex.run(_grid_length_fixed_points, tasks, label="phase-diagram-rows")
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def phase_diagram(activation, *, weight_range=(0.5, 4.0), bias_range=(0.0, 0.3), resolution=(61, 41),
                  input_var: float = 1.0, input_power: float = 0.0, q0: float = 1.0,
                  critical_tol: float = CRITICAL_TOL, method: str = "auto", client=None,
                  workers: int | None = None) -> PhaseDiagram:
    """Maps of chi_1, lambda_max = (1/2) ln chi_1 and xi_c over a grid, plus the critical line.

    The maps use tables of P, D over q and of the correlation map over (q, c) (each expectation a
    ``pair`` / ``dpair`` call), cubic-spline interpolation between table points and a direct
    ``dpair`` evaluation of chi_1 and chi_c at the solved fixed points; they agree with
    :func:`netfield.mean_field_criticality` to ~1e-6. The critical line is traced by continuation
    (:func:`critical_line`), never read off the grid.

    Args:
        activation: name, :class:`netfield.Activation` or callable.
        weight_range, bias_range: (min, max) of the grid axes; weight_var > 0, bias_var >= 0.
        resolution: (number of weight_var points, number of bias_var points), each >= 2.
        input_var, input_power: input drive (C0).
        q0: length from which the length map is followed (see :func:`netfield.mean_field_criticality`).
        client, workers: solve the length fixed points (a search per grid point, the cost that grows
            with the grid) for blocks of bias rows as tasks on Dask (docs/distributed.md); the same
            bits as in one process. The tables and the correlation step stay in this process.

    Cost: about 10 us per grid point for the length fixed points (a Python loop over the points) plus
    tables and the critical line (~1 s, compiled once per activation); ``resolution`` is the lever.

    Example:
        >>> import netfield
        >>> pd = netfield.phase_diagram("erf", resolution=(5, 3))
        >>> pd.lyapunov.shape
        (3, 5)
    """
    act = get_activation(activation)
    w_lo, w_hi = _check_range("weight_range", weight_range, positive=True)
    b_lo, b_hi = _check_range("bias_range", bias_range, positive=False)
    if not (isinstance(resolution, (tuple, list)) and len(resolution) == 2):
        raise ValueError(f"resolution must be a pair (n_weight, n_bias) of integers >= 2, got {resolution!r}")
    nw = check_positive_int("resolution[0]", resolution[0], minimum=2)
    nb = check_positive_int("resolution[1]", resolution[1], minimum=2)
    check_variance("input_var", input_var)
    check_variance("input_power", input_power)
    drive = float(input_var) * float(input_power)
    ws = np.linspace(w_lo, w_hi, nw)
    bs = np.linspace(b_lo, b_hi, nb)
    W, B = np.meshgrid(ws, bs)
    S = B + drive
    if client is None and workers is None:
        q_star, D_star = _grid_length_fixed_points(act, W, S, float(q0), method)
    else:
        q_star, D_star = _distributed_length_fixed_points(act, W, S, float(q0), method, client, workers)
    unbounded = np.isinf(q_star)
    chi_1 = W * D_star
    phase = np.where(np.abs(chi_1 - 1.0) <= critical_tol, 1, np.where(chi_1 < 1.0, 0, 2))
    phase = np.where(unbounded, 3, phase)
    with np.errstate(divide="ignore"):
        lyap = np.where(chi_1 > 0, 0.5 * np.log(np.where(chi_1 > 0, chi_1, 1.0)), -np.inf)

    c_star = np.ones_like(W)
    chi_c = np.where(q_star <= Q_DEGENERATE, 1.0, chi_1)  # ordered: c* = 1 (identity map at q* = 0)
    chaotic = (phase == 2)
    if chaotic.any():
        c_star[chaotic], chi_c[chaotic] = _grid_correlation_fixed_points(
            act, W[chaotic], S[chaotic], q_star[chaotic], chi_1[chaotic], method)
    if unbounded.any():
        # q -> inf: the normalised correlation map without sigma2 is the same for every grid point
        points, slope_one, identity = correlation_fixed_points(act, Q_LARGE, 1.0, 0.0, method)
        c_inf, chi_inf = select_correlation_fixed_point(points, slope_one, identity, critical_tol)
        c_star[unbounded], chi_c[unbounded] = c_inf, chi_inf
    chi_c = np.where(phase == 1, 1.0, chi_c)
    xi_c = np.vectorize(depth_scale, otypes=[float])(chi_c)
    line = critical_line(act, bias_max=max(b_hi, 1e-12), weight_max=w_hi, input_var=input_var,
                         input_power=input_power, method=method)
    return PhaseDiagram(act.name, ws, bs, q_star, chi_1, lyap, c_star, chi_c, xi_c, phase.astype(int), line, drive)


def _grid_correlation_fixed_points(act, w, s, q, chi_1, method, n_q: int = 48, n_c: int = 97):
    """c* < 1 and chi_c at chaotic grid points: the largest root below 1 of the deflated correlation
    map k(c) = (c' - c) / (c - 1) (C9), k(1) = chi_1 - 1, on a bicubic spline of a (log q, c) table
    of ``pair`` (one (1, n_c) kernel row per q); chi_c = w d<phi phi>/dc / q* (= w <phi' phi'> by
    Price, (C5)) from the spline's derivative."""
    from scipy.interpolate import RectBivariateSpline  # loads on first use (import time)
    qmin, qmax = float(q.min()), float(q.max())
    q_tab = np.geomspace(qmin, qmax, n_q) if qmax > qmin * (1 + 1e-9) else np.array([qmin * 0.999, qmin, qmin * 1.001])
    if len(q_tab) < 4:
        q_tab = np.geomspace(qmin * 0.99, qmin * 1.01, 4)
    c_tab = np.linspace(-1.0, 1.0, n_c)
    rows = [np.asarray(pair(act, np.array([[qq]]), np.full((1, n_c), qq), (c_tab * qq)[None, :], method=method))[0]
            for qq in q_tab]
    Pi = np.array(rows)                       # (n_q, n_c): <phi(u1) phi(u2)> at length q, correlation c
    spline = RectBivariateSpline(np.log(q_tab), c_tab, Pi, kx=3, ky=3)
    lq = np.log(q)
    qn = q                                     # at the fixed point q' = q
    def k(c):
        f = (w * spline.ev(lq, c) + s) / qn
        return (f - c) / (c - 1.0)
    # scan from just below 1 downwards for the first sign change of k (largest root below 1)
    grid = np.linspace(1.0, -1.0, 2 * n_c)[1:]
    k_prev = chi_1 - 1.0     # k(1) > 0 in the chaotic phase
    c_hi = np.ones_like(q)
    c_lo = np.full_like(q, -1.0)
    found = np.zeros(q.shape, bool)
    prev_c = np.ones_like(q)
    for cg in grid:
        kc = k(np.full_like(q, cg))
        hit = ~found & (np.sign(kc) != np.sign(k_prev))
        c_hi = np.where(hit, prev_c, c_hi)
        c_lo = np.where(hit, cg, c_lo)
        found |= hit
        k_prev = np.where(found, k_prev, kc)
        prev_c = np.where(found, prev_c, cg)
    a, b = c_lo.copy(), np.minimum(c_hi, 1.0 - 1e-12)
    ka = k(a)
    for _ in range(50):
        mid = 0.5 * (a + b)
        km = k(mid)
        left = np.sign(km) == np.sign(ka)
        a = np.where(left, mid, a)
        ka = np.where(left, km, ka)
        b = np.where(left, b, mid)
    c_star = np.where(found, 0.5 * (a + b), -1.0)
    chi_c = w * spline.ev(lq, c_star, dy=1) / q
    return c_star, chi_c


def _check_range(name, value, positive):
    if not (isinstance(value, (tuple, list)) and len(value) == 2):
        raise ValueError(f"{name} must be a pair (min, max), got {value!r}")
    lo, hi = value
    for v in (lo, hi):
        check_variance(name, v, allow_zero=not positive)
    if not float(lo) < float(hi):
        raise ValueError(f"{name} must satisfy min < max, got {value!r}")
    return float(lo), float(hi)
