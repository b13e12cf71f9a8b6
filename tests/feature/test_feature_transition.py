"""Newton's method, node rules and the broken branch (netfield.feature.theory / transition, F9-F11)."""

from __future__ import annotations

import numpy as np
import pytest

import netfield as nf
from netfield.feature import build_problem, posterior_kernels, solve
from netfield.feature.transition import broken_branch, broken_solution, order_parameter

X2 = np.random.default_rng(0).normal(size=(2, 3))
Y2 = np.array([1.0, -1.0])
KW = {"kappa": 0.1, "points": 2**14, "rule": "qmc"}


def test_newton_finds_the_fixed_point_of_the_iteration():
    """Below the transition the solution is stable: Anderson mixing and Newton land on the same point."""
    prob = build_problem(nf.rnn(3, "erf", weight_var=1.5), X2, Y2, kappa=0.1, signal=0.1, points=2**11, rule="qmc")
    a = solve(prob, spectrum=False)
    b = solve(prob, method="newton", spectrum=False)
    assert b.converged and b.iterations < 15
    np.testing.assert_allclose(b.kernel, a.kernel, atol=1e-9)


@pytest.mark.parametrize("arch", ["rnn", "dnn"])
def test_gauss_hermite_rule_gives_the_lazy_limit(arch):
    """The tensor Gauss-Hermite node set reproduces the Gaussian-process kernels at signal -> 0."""
    net = getattr(nf, arch)(2, "erf", weight_var=1.5, bias_var=0.2)
    r = posterior_kernels(net, X2, Y2, kappa=0.5, signal=1e-8, points=8**4, rule="hermite")
    mf = nf.mean_field(net, X2)
    np.testing.assert_allclose(r.kernel[1, 1], np.asarray(mf.preactivation(2, 2)), atol=1e-7)


def test_quadrature_rules_agree_at_moderate_signal():
    """Gauss-Hermite (8^4 nodes) and QMC with the adapted proposal (2^14 points) on a 4-dimensional
    single-site law: equal kernels to the QMC's accuracy."""
    net = nf.dnn(2, "erf", weight_var=1.5)
    a = posterior_kernels(net, X2, Y2, kappa=0.2, signal=0.5, points=12**4, rule="hermite")
    b = posterior_kernels(net, X2, Y2, kappa=0.2, signal=0.5, points=2**14, rule="qmc")
    np.testing.assert_allclose(b.kernel, a.kernel, atol=3e-3)


def test_bad_rule_is_rejected():
    with pytest.raises(ValueError, match=r"rule must be one of 'auto', 'hermite', 'qmc', 'mcmc', got 'simpson'"):
        build_problem(nf.rnn(2, "erf"), X2, Y2, kappa=0.1, rule="simpson")


def test_broken_solution_exists_for_the_rnn_only_above_the_transition():
    """Critical signal ~0.6 here: at 1.0 the RNN has a solution with C(2,3) != 0, of both signs (the
    W -> -W symmetry), with the same equal-time kernels; at 0.2 and for the DNN only the symmetric one."""
    rnn, dnn = nf.rnn(3, "erf", weight_var=1.5), nf.dnn(3, "erf", weight_var=1.5)
    above = broken_solution(rnn, X2, Y2, signal=1.0, **KW)
    assert above.converged
    q = order_parameter(above.kernel, train_patterns=2)
    assert 0.3 < q < 0.6
    assert above.kernel[1, 2, 0, 1] * above.kernel[1, 2, 0, 0] < 0  # aligned with y y^T, y = (1, -1)
    for r in (broken_solution(rnn, X2, Y2, signal=0.2, **KW), broken_solution(dnn, X2, Y2, signal=1.0, **KW)):
        assert order_parameter(r.kernel, train_patterns=2) < 1e-8


def test_order_parameter_uses_the_second_moment_when_given():
    K = np.zeros((3, 3, 1, 1))
    K[1, 1] = K[2, 2] = 2.0
    K[1, 2] = K[2, 1] = 0.0  # mean over both signs
    assert order_parameter(K, train_patterns=1) == 0.0
    assert order_parameter(K, np.full((3, 3, 1, 1), 1.0), train_patterns=1) == pytest.approx(0.5)


def test_bad_signals_for_the_branch():
    with pytest.raises(ValueError, match=r"signals must be a non-empty sequence of positive numbers"):
        broken_branch(nf.rnn(3, "erf"), X2, Y2, kappa=0.1, signals=(0.0, 1.0))


def test_deflation_factor_gradient():
    """m(u) = prod_k (|u - u_k|^-2 + 1) and its gradient (central differences)."""
    from netfield.feature.newton import _deflation

    rng = np.random.default_rng(3)
    u, known = rng.normal(size=5), [rng.normal(size=5), rng.normal(size=5)]
    m, g = _deflation(u, known)
    assert m == pytest.approx(np.prod([1 / np.sum((u - k) ** 2) + 1 for k in known]))
    h = 1e-6
    fd = [(_deflation(u + h * e, known)[0] - _deflation(u - h * e, known)[0]) / (2 * h) for e in np.eye(5)]
    np.testing.assert_allclose(g, fd, rtol=1e-6)


def test_deflated_newton_does_not_fall_back_onto_the_symmetric_solution():
    """Above the transition, from the symmetric solution displaced slightly along the unstable mode: plain
    Newton returns to the symmetric root (this QMC set), Newton deflated at it finds the broken one."""
    from netfield.feature.theory import _pack, _unpack
    from netfield.feature.transition import _leading_direction, cross_time_eigenvalue

    net = nf.rnn(3, "erf", weight_var=1.5)
    lam, sym = cross_time_eigenvalue(net, X2, Y2, kappa=0.1, signal=1.0, points=2**14, seed=0, rule="qmc")
    prob = sym.problem
    _, idx, vec = _leading_direction(prob, sym)
    v0 = _pack(prob, sym.base, sym.conjugate, sym.readout_conjugate)
    start = _unpack(prob, v0.at[idx].add(0.2 * 0.4 * vec / np.abs(vec).max()))
    known = [(sym.base, sym.conjugate, sym.readout_conjugate)]
    plain = solve(prob, method="newton", init=start, spectrum=False)
    deflated = solve(prob, method="newton", init=start, spectrum=False, deflate=known)
    assert lam > 1 and plain.converged and deflated.converged
    assert order_parameter(plain.kernel, train_patterns=2) < 1e-6
    assert order_parameter(deflated.kernel, train_patterns=2) > 0.3


def test_adapted_defensive_proposal_with_a_singular_input_kernel():
    """Sequential task (6 patterns in d = 3: C is singular at step 1; 18-dimensional averages): nodes from
    N(0, C) give an effective sample size of a few per cent; the adapted defensive mixture (refine, F8a)
    brings it above 40 %, and two QMC sets then agree on the predictions to 0.03."""
    from netfield.feature.study import sequential_task
    from netfield.feature.theory import continuation

    x, lab, xt, _ = sequential_task(steps=3)
    net = nf.rnn(3, "erf", weight_var=1.5)

    def run(seed, passes):
        prob_at = lambda s: build_problem(net, x, np.stack([lab, lab]), kappa=0.1, signal=s, supervised_steps=(1, 3),
                                          x_test=xt, points=2**13, seed=seed, rule="qmc")
        return continuation(prob_at, 1.0, passes=passes, spectrum=False)

    plain, a, b = run(0, 0), run(0, 2), run(1, 2)
    assert plain.ess < 0.15 * 2**13
    assert a.ess > 0.4 * 2**13 and b.ess > 0.4 * 2**13
    assert np.abs(a.prediction - b.prediction).max() < 0.03
