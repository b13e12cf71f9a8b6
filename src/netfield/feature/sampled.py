"""The muP saddle point with single-site averages from Markov chains, for tens of patterns and steps
(docs/feature.md F8c).

Quadrature in T P dimensions (QMC, Gauss-Hermite) collapses beyond ~20 dimensions: a grid is impossible
and importance weights from any fixed Gaussian degenerate. Here the single-site law of the current state
v_k is sampled by Hamiltonian Monte Carlo (:mod:`netfield.feature.single_site`), and the draws xi_i
turn the saddle-point map into a smooth deterministic function of the state by self-normalised
reweighting:

    <f(h)>_v ~ sum_i w_i f(L_v xi_i),   w_i ~ exp(E_v(L_v xi_i) - E_{v_k}(L_{v_k} xi_i))              (F8c)

(both laws in the whitened frame have the base N(0, I), so the ratio is known). Its fixed point v_{k+1}
is found by the deterministic solver (Anderson mixing, :func:`netfield.feature.theory.solve`); then the
chains continue at v_{k+1} (warm start, preconditioned by the Cholesky factor of <xi xi^T>) and the
map is rebuilt. At the fixed point the weights are uniform: the averages are plain Markov-chain
averages. No step leaves the states whose reweighting keeps ESS_FLOOR of the draws (trust region); where
Anderson mixing cannot reach the fixed point inside it, Newton-Krylov steps (:mod:`netfield.feature.krylov`,
F8d) go as far as it allows. A rung is left once its state is settled: at the fixed point of its draws, or
within their noise of it (:func:`_noise_ratio`).
The signal is raised along a geometric ladder (as :func:`netfield.feature.theory.continuation`); on the
last rung the number of draws doubles while the state still moves, up to ``samples``.

Error: the chains are split into GROUPS (16) groups, or fewer so that each holds at least MIN_GROUP_DRAWS
and 16 x T P draws (a group's own solution must stay in the linear regime of the noise); the map of
each group's draws is solved separately from the final state, and the error of every output is the
standard deviation of the group solutions over sqrt(groups) (chains are independent, so this counts their autocorrelation). Converged when the
last move of the state is within CONVERGED_Z of that error (root mean square of move / error over the
free variables); otherwise more rounds (``max_rounds``).

Cost: per round, chains x (warm-up + draws) x ~4 leapfrog steps x 3 (T P)^2 multiply-adds for the
chains, and ~30 Anderson iterations x draws x 5 (T P)^2 (float32) for the map; P = 20, T = 5 (100
dimensions) at 2^17 draws: under 3 minutes on 2 cores (docs/feature.md section 7). The levers:
``samples`` (error ~ samples^-1/2) and ``chains``.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from .._runtime.checkpoint import array_digest, run_key
from .._runtime.progress import progress_bar
from .checkpoint import load_state, save_state
from .krylov import newton_krylov
from .single_site import ChainState, _jit_tilt_energy, sample_single_site
from .theory import (
    FeatureResult,
    NonConvergenceError,
    _free_index,
    _jit_lean_residual,
    _jit_residual,
    _pack,
    _unpack,
    lazy_point,
    solve,
)

jax.config.update("jax_enable_x64", True)

ESS_FLOOR = 0.5  # least share of the draws a step's reweighting may keep (trust region)
CLOSE = 0.8  # reweighting share above which the draws are taken as drawn at the new state
GROUPS = 16  # independent groups of chains behind the error estimate (15 degrees of freedom), at most
MIN_GROUP_DRAWS = 1024  # fewest draws per group (and 16 per dimension): a group's own solution must stay in
#                         the linear regime (256 draws in 100 dimensions gave errors 5x too large)
CONVERGED_Z = 2.0  # root-mean-square move / error at convergence (sqrt(2) expected for two estimates)
RUNG_SAMPLES = 2048  # draws per round on the ladder's lower rungs, at least
RUNG_SAMPLES_PER_DIM = 64  # ... and this many per dimension: 2048 draws solved 20 digit images x 5 steps (100
#                            dimensions) but stalled with 8 test images more (140: the noisy map's first step left
#                            the trust region on every round); 8192 solved both
WARMUP, REWARM = 150, 30  # warm-up transitions of fresh chains and of warm-started ones
INNER_TOL = 1e-4  # residual of the reweighted map's fixed point: float32 sums over the draws leave ~1e-5, the
#                   draws' own noise in each entry of the map is ~1 / sqrt(effective draws), 4e-3 at 2^17 draws
INNER_ITERATIONS = 200
HISTORY = 20  # residuals of the Anderson mixing (fewer iterations than 6 where each costs samples x (T P)^2)
MIN_TRUST = 0.25  # a rung whose first step must be cut below this is too far: the signal step is halved
MIN_SIGNAL_STEP = 1e-4  # smallest signal step, relative to the signal
SETTLED_RATIO = 2.0  # noise ratio (_noise_ratio) up to which a state counts as settled (sqrt(2) expected there)
CHECKPOINT_FORMAT = 2  # 2: Newton-Krylov rounds (F8d) and the noise-ratio test; a format-1 run is not continued


def _surrogate(prob, v, xi):
    """The saddle-point problem whose averages are the draws xi of the law at ``v``, reweighted (F8c)."""
    xi = jnp.asarray(xi)
    e0 = np.asarray(_jit_tilt_energy(prob, v, xi))
    return replace(prob, normals=xi, log_weights=jnp.asarray(-e0), proposal=None, defensive=None,
                   control_variate=False, single_precision=True)


def _reweight_share(sprob, v) -> float:
    """Effective share of the draws at state ``v`` of the reweighted problem ``sprob``."""
    ess = float(_jit_lean_residual(sprob, v)[3]["ess"])
    return ess / sprob.normals.shape[0] if np.isfinite(ess) else 0.0


def _precond(sprob, v):
    """Cholesky factor of <xi xi^T> at ``v`` (the chains' next preconditioner), or None if not positive."""
    xixi = np.asarray(_jit_residual(sprob, v)[3]["xixi"])
    xixi = 0.5 * (xixi + xixi.T)
    try:
        return np.linalg.cholesky(xixi + 1e-8 * np.eye(xixi.shape[0]))
    except np.linalg.LinAlgError:
        return None


def _fixed_point(sprob, v, lazy, floor=0.0, keep=0.0):
    """The reweighted map's fixed point from ``v`` inside the trust region ``floor`` (F8c): Anderson mixing,
    and where that leaves the region (or does not converge) Newton-Krylov steps (F8d) from ``v`` instead.

    Returns (the FeatureResult at the final state, its packed state, converged, the first Newton step's
    length: 1 where Anderson converged or Newton's first step was whole, 0 where no step was taken)."""
    r = solve(sprob, init=_unpack(sprob, v), tol=INNER_TOL, spectrum=False, raise_on_failure=False, lazy=lazy,
              min_ess=floor * sprob.normals.shape[0], history=HISTORY, max_iter=INNER_ITERATIONS)
    if r.converged:
        return r, _pack(sprob, jnp.asarray(r.base), jnp.asarray(r.conjugate), jnp.asarray(r.readout_conjugate)), True, 1.0
    v_new, _, converged, first = newton_krylov(sprob, v, _free_index(sprob), INNER_TOL, floor=floor, keep=keep)
    r = solve(sprob, init=_unpack(sprob, v_new), tol=np.inf, spectrum=False, raise_on_failure=False, lazy=lazy)
    return replace(r, converged=converged), v_new, converged, first


def _noise_ratio(prob, v, xi, free) -> float:
    """The map's residual at ``v`` against its noise (docs/feature.md section 7): for each part of the free
    variables (C, Ct, Qt) rms(r_1 + r_2) / rms(r_1 - r_2), r_i the residual from the draws ``xi`` (draws,
    chains, d) of one half of the chains, and the largest of the three: 1 at the exact fixed point, sqrt(2)
    at the fixed point of independent draws of the same size, >> 1 far from it. Per part, so that Qt (P^2
    of ~2 T^2 P^2 variables, the stiffest) is not averaged away by the noise of the many."""
    half = xi.shape[1] // 2
    r = [np.asarray(_jit_lean_residual(_surrogate(prob, v, xi[:, part].reshape(-1, xi.shape[2])), v)[1])[free]
         for part in (slice(0, half), slice(half, None))]
    n = prob.T * prob.T * prob.P * prob.P
    part = np.searchsorted([n, 2 * n], free, side="right")  # 0: C, 1: Ct, 2: Qt
    plus = np.bincount(part, (r[0] + r[1]) ** 2, minlength=3)
    minus = np.bincount(part, (r[0] - r[1]) ** 2, minlength=3)
    used = minus > 0
    return float(np.sqrt(plus[used] / minus[used]).max()) if used.any() else 0.0


def error_groups(chains: int, draws: int, dim: int, groups: int = GROUPS) -> int:
    """Groups of chains behind the error: at most ``groups``, a divisor of ``chains``, each with at least
    MIN_GROUP_DRAWS and 16 x ``dim`` draws (module docstring); 0 where fewer than 2 such groups fit."""
    most = min(groups, chains, draws // max(MIN_GROUP_DRAWS, 16 * dim))
    return next((g for g in range(most, 1, -1) if chains % g == 0), 0)


def _group_errors(prob, v_k, draws, v, lazy, groups):
    """Standard errors of the solution's state and outputs from the groups of chains (module docstring),
    and the number of groups whose own fixed point was not found to INNER_TOL (their last state is used:
    the draws' noise is then larger than the group spread shows; reported in ``sampling``)."""
    xi = draws.xi  # (draws, chains, d)
    chains = xi.shape[1]
    size = chains // groups
    states, outs, unsolved = [], [], 0
    for g in range(groups):
        part = xi[:, g * size:(g + 1) * size].reshape(-1, xi.shape[2])
        r, vg, solved, _ = _fixed_point(_surrogate(prob, v_k, part), v, lazy)
        unsolved += not solved
        states.append(np.asarray(vg))
        outs.append((r.kernel, r.overlap, r.prediction))
    se = lambda a: np.std(np.asarray(a), axis=0, ddof=1) / np.sqrt(groups)
    return se(states), [se([o[i] for o in outs]) for i in range(3)], unsolved


def _description(prob, signal, samples, chains, groups, steps, max_rounds, seed) -> dict:
    """What a checkpoint must match: the problem at ``signal`` and every setting of the run."""
    return {"format": CHECKPOINT_FORMAT, "net": repr(prob.net), "c_in": array_digest(np.asarray(prob.c_in)),
            "targets": array_digest(np.asarray(prob.targets)), "free": array_digest(np.asarray(prob.free)),
            "T": prob.T, "P": prob.P, "P_train": prob.P_train, "supervised": list(prob.supervised),
            "kappa": float(prob.kappa), "inv_width": float(prob.inv_width), "signal": float(signal),
            "samples": samples, "chains": chains, "groups": groups, "steps": steps, "max_rounds": max_rounds,
            "seed": seed}


def _save(path, key, description, run):
    arrays = {"v": np.asarray(run["v"]), "v_done": np.asarray(run["v_done"]), "key": np.asarray(run["key"]),
              "numbers": np.array([run["s"], run["done"], run["size"], run["round"]], float),
              "rounds": np.array(json.dumps(run["rounds"]))}
    if run["chains"] is not None:
        arrays.update(chain_xi=run["chains"].xi, chain_step=np.array(run["chains"].step),
                      chain_precond=run["chains"].precond)
    save_state(path, arrays, key, description)


def _load(path, key, description) -> dict:
    a = load_state(path, key, description)
    s, done, size, rnd = (float(u) for u in a["numbers"])
    chains = ChainState(a["chain_xi"], float(a["chain_step"]), a["chain_precond"]) if "chain_xi" in a else None
    return {"v": jnp.asarray(a["v"]), "v_done": jnp.asarray(a["v_done"]), "key": jnp.asarray(a["key"]), "s": s,
            "done": done, "size": int(size), "round": int(rnd), "rounds": json.loads(str(a["rounds"])),
            "chains": chains}


def solve_sampled(prob_at, signal: float, *, samples: int = 2**14, chains: int = 128, steps: int = 4,
                  max_rounds: int = 12, groups: int = GROUPS, seed: int = 0, progress=True,
                  raise_on_failure: bool = True, checkpoint=None, resume: bool = False,
                  start: FeatureResult | None = None) -> FeatureResult:
    """Saddle point (F5-F7) at ``signal`` with Markov-chain single-site averages (module docstring, F8c).

    Args:
        prob_at: signal -> :class:`netfield.feature.theory.Problem` (``build_problem(..., signal=s)``).
        samples: draws (chains x draws per chain) of the final rounds; error ~ samples^-1/2.
        chains: chains run side by side (a multiple of ``groups``).
        steps: the first rung is signal / 2^(steps - 1) (the continuation then adapts its steps); from
            ``start`` at signal s0, s0 + (signal - s0) / 2^(steps - 1).
        max_rounds: sampling rounds per rung at most.
        groups: groups of chains behind the error estimate (>= 2), at most: fewer where a group would
            hold fewer than MIN_GROUP_DRAWS (1024) or 16 x T P draws (:func:`error_groups`).
        seed: the chains' random key.
        progress: a bar counting the rounds (True, False / None, or a callable; README "Progress").
        checkpoint: path of a .npz file written after every round (atomically, with a manifest:
            :mod:`netfield.feature.checkpoint`); ``resume=True`` continues from it with exactly the
            numbers of an uninterrupted run (a file of another problem or setting is refused, naming the
            differing arguments).
        start: a solution of the same network and data at another signal s0 (a :class:`FeatureResult`,
            e.g. of this function): the continuation runs from its state, up or down in the signal, so
            the solve follows the branch ``start`` lies on (where the saddle point has several, e.g. a
            weakly and a strongly broken one, the lazy start finds whichever its noise leads to).

    Returns:
        :class:`FeatureResult` with ``kernel_error``, ``overlap_error`` and ``prediction_error`` (the
        group estimate) and ``sampling``: per round the rung's signal, draws, the chains' acceptance,
        split-R-hat and effective sample size, the step's reweighting share and move; and the final
        ``z`` (move / error). Raises :class:`NonConvergenceError` (or, with ``raise_on_failure=False``,
        returns ``converged=False``) when the move stays above CONVERGED_Z errors after ``max_rounds``.
    """
    if chains % groups or chains < 2 * groups or groups < 2:
        raise ValueError(f"chains must be a multiple of groups >= 2 with at least 2 chains per group, got "
                         f"chains={chains!r}, groups={groups!r}")
    if samples < chains * 4:
        raise ValueError(f"samples must be at least 4 draws per chain (>= {4 * chains}), got {samples!r}")
    if resume and checkpoint is None:
        raise ValueError("resume=True needs checkpoint=<path of a .npz file>, got checkpoint=None")
    prob = prob_at(float(signal))
    T, P = prob.T, prob.P
    used_groups = error_groups(chains, samples, T * P, groups)
    if used_groups < 2:
        least = 2 * max(MIN_GROUP_DRAWS, 16 * T * P)
        raise ValueError(f"samples must give at least 2 groups of chains with {least // 2} draws each for the error "
                         f"estimate (>= {least} for T P = {T * P} dimensions), got samples={samples!r}")
    lazy = lazy_point(prob)
    k = len(prob.supervised) * prob.P_train
    v0, s0 = _pack(prob, lazy, jnp.zeros((T, T, P, P)), jnp.zeros((k, k))), 0.0
    if start is not None:
        sp = start.problem
        if not isinstance(start, FeatureResult) or sp is None or (sp.T, sp.P, sp.P_train) != (T, P, prob.P_train):
            raise ValueError(f"start must be a FeatureResult of the same network and data (T = {T}, P = {P}, "
                             f"P_train = {prob.P_train}), got {type(start).__name__}")
        v0 = _pack(prob, jnp.asarray(start.base), jnp.asarray(start.conjugate), jnp.asarray(start.readout_conjugate))
        s0 = float(sp.signal)
    free = _free_index(prob)
    path = None if checkpoint is None else Path(checkpoint)
    description = _description(prob, signal, samples, chains, groups, steps, max_rounds, seed)
    if start is not None:  # (absent otherwise: the keys of checkpoints of lazy starts stay as they were)
        description.update(start=array_digest(np.asarray(v0)), start_signal=s0)
    key_run = str(run_key(**description))
    rung = max(RUNG_SAMPLES, RUNG_SAMPLES_PER_DIM * T * P)
    rung_size = lambda s: max(min(samples, rung if s != signal else 2 * rung), 4 * chains)
    first = s0 + (signal - s0) / 2 ** (steps - 1)
    # the run's whole state between rounds (what a checkpoint holds): the state v and the last solved rung
    # (done, v_done; at first s0 and its state: 0 and the lazy point, or ``start``), the rung's signal s,
    # its draws and round, the chains
    run = {"v": v0, "v_done": v0, "key": jax.random.PRNGKey(seed), "s": first, "done": s0, "size": rung_size(first),
           "round": 0, "rounds": [], "chains": None}
    if resume and path is not None and path.is_file():
        run = _load(path, key_run, description)
    result, converged, failed, z, draws = None, False, False, np.inf, None
    with progress_bar(progress, None, "feature saddle point (Markov chains)", unit="rounds") as bar:
        while not (converged or failed):
            s, v = run["s"], run["v"]
            prob = prob_at(float(s))
            key, sub = jax.random.split(run["key"])
            t0 = time.perf_counter()
            draws = sample_single_site(prob, v, chains=chains, draws=-(-run["size"] // chains),
                                       warmup=WARMUP if run["chains"] is None else REWARM, key=sub,
                                       start=run["chains"])
            xi = draws.xi.reshape(-1, T * P)
            t1 = time.perf_counter()
            sprob = _surrogate(prob, v, xi)
            noise_ratio = _noise_ratio(prob, v, draws.xi, free)
            if s != signal and noise_ratio <= SETTLED_RATIO:  # a lower rung, solved to its draws' noise: go on
                result, v_new, solved, alpha, share = None, v, False, 1.0, 1.0
            else:  # the reweighted map's fixed point, or how far towards it the trust region lets the round go
                result, v_new, solved, alpha = _fixed_point(sprob, v, lazy, ESS_FLOOR, CLOSE)
                share = _reweight_share(sprob, v_new)
            # at the draws' fixed point inside the region, or within the draws' noise of it: near enough
            settled = (solved and share >= CLOSE) or noise_ratio <= SETTLED_RATIO
            move = np.asarray(v_new - v)[free]
            info = {"signal": float(s), "draws": int(xi.shape[0]), "acceptance": draws.acceptance,
                    "rhat": draws.rhat, "ess": draws.ess, "hmc_step": draws.state.step, "trust_step": alpha,
                    "reweight_share": share, "move": float(np.abs(move).max()), "iterations": 0 if result is None else result.iterations,
                    "solved": bool(solved), "noise_ratio": noise_ratio,
                    "sample_s": t1 - t0, "solve_s": time.perf_counter() - t1}
            bar(1)
            chains_state = draws.state
            nxt = dict(run, key=key, rounds=run["rounds"] + [info], chains=chains_state)
            if run["round"] == 0 and alpha < MIN_TRUST and s != run["done"]:
                # this rung is too far from the last solution: back there, half the signal step
                if abs(s - run["done"]) <= signal * MIN_SIGNAL_STEP:
                    failed = True
                half = run["done"] + (s - run["done"]) / 2
                nxt.update(v=run["v_done"], s=half, size=rung_size(half), round=0)
            else:
                pre = _precond(sprob, v_new) if share >= CLOSE else None
                if pre is not None:
                    nxt["chains"] = replace(chains_state, precond=pre)
                nxt.update(v=v_new, round=run["round"] + 1)
                if settled:
                    if s != signal:  # rung solved: the next signal step twice this one (up or down)
                        step = s - run["done"]
                        after = min(signal, s + 2 * step) if step > 0 else max(signal, s + 2 * step)
                        nxt.update(done=s, v_done=v_new, s=after, round=0)
                        nxt["size"] = rung_size(nxt["s"])
                    elif xi.shape[0] < samples:
                        nxt["size"] = min(samples, 2 * xi.shape[0])
                    else:
                        t2 = time.perf_counter()
                        err_v, (kernel_err, overlap_err, pred_err), unsolved = _group_errors(
                            prob, v, draws, v_new, lazy, used_groups)
                        e = err_v[free]
                        ok = e > 0
                        z = float(np.sqrt(np.mean((move[ok] / e[ok]) ** 2))) if ok.any() else 0.0
                        info.update(error_s=time.perf_counter() - t2, z=z, groups_unsolved=unsolved)
                        converged = z <= CONVERGED_Z
                if not converged and nxt["round"] >= max_rounds:
                    failed = True
            run = nxt
            if path is not None and not converged:
                _save(path, key_run, description, run)
    rounds = run["rounds"]
    if not converged and raise_on_failure:
        raise NonConvergenceError(
            f"the sampled saddle point did not settle at signal {run['s']:g} (target {signal:g}) within {max_rounds} "
            f"rounds (last move {z:.3g} errors); raise max_rounds or samples; raise_on_failure=False returns the "
            f"last state")
    summary = {"rounds": tuple(rounds), "samples": int(rounds[-1]["draws"]), "chains": int(chains),
               "groups": int(used_groups), "groups_unsolved": int(rounds[-1].get("groups_unsolved", 0)), "z": z,
               "acceptance": rounds[-1]["acceptance"], "rhat": rounds[-1]["rhat"], "ess": rounds[-1]["ess"]}
    final = replace(result, problem=prob, gp_kernel=np.asarray(lazy), ess=draws.ess, sampling=summary)
    if not converged:
        return replace(final, converged=False)
    return replace(final, kernel_error=kernel_err, overlap_error=overlap_err, prediction_error=pred_err)
