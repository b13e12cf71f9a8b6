"""GP classification: centred one-hot regression and the multi-class softmax Laplace approximation
(GPML Alg. 3.3 / 3.4), checked against dense (CN x CN) linear algebra."""

import jax
import numpy as np
import pytest

import netfield as nf
from netfield import gp

RNG = np.random.default_rng(2)
X = RNG.normal(size=(24, 3))
LABELS = np.argmax(X + 0.4 * RNG.normal(size=(24, 3)), axis=1)
Y, CLASSES = gp.class_indicators(LABELS)
NET = nf.dnn(2, "erf", weight_var=1.5, bias_var=0.1, readout_var=4.0)
K = np.asarray(nf.kernel(NET, X))


def softmax(f):
    e = np.exp(f - f.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def dense_w(pi):
    """W = D - Pi Pi^T in class-major order (GPML eq. 3.38)."""
    c = pi.shape[1]
    stack = np.vstack([np.diag(pi[:, j]) for j in range(c)])
    return np.diag(pi.T.reshape(-1)) - stack @ stack.T


def test_one_hot_targets_are_centred():
    y, classes = gp.one_hot(["b", "a", "c", "b"])
    assert classes.tolist() == ["a", "b", "c"]
    np.testing.assert_allclose(y.sum(axis=1), 0.0, atol=1e-15)
    np.testing.assert_allclose(y[0], [-1 / 3, 2 / 3, -1 / 3])


@pytest.mark.parametrize("mode_fn", [gp.laplace_mode, gp.laplace_mode_numpy], ids=["jax", "numpy"])
def test_mode_and_evidence_match_dense_algebra(mode_fn):
    mode = mode_fn(K, Y)
    assert bool(mode.converged)
    f = np.asarray(mode.f)
    pi = softmax(f)
    np.testing.assert_allclose(f, K @ (Y - pi), atol=1e-10)  # stationarity, GPML eq. 3.35
    n, c = f.shape
    kbig = np.kron(np.eye(c), K)
    fv, yv = f.T.reshape(-1), Y.T.reshape(-1)
    psi = -0.5 * fv @ np.linalg.solve(kbig, fv) + yv @ fv - np.log(np.exp(f).sum(axis=1)).sum()
    _, logdet = np.linalg.slogdet(np.eye(n * c) + kbig @ dense_w(pi))
    assert float(mode.log_marginal_likelihood) == pytest.approx(psi - 0.5 * logdet, rel=1e-10)  # GPML eq. 3.44


def test_jax_and_numpy_paths_agree_and_jax_jits():
    a = jax.jit(lambda k, y: gp.laplace_mode(k, y))(K, Y)
    b = gp.laplace_mode_numpy(K, Y)
    np.testing.assert_allclose(np.asarray(a.f), b.f, atol=1e-12)
    pa, pb = gp.laplace_predictor(K, Y, a.f), gp.laplace_predictor_numpy(K, Y, b.f)
    ma, ca = gp.laplace_latent(pa, K[:5], np.diag(K)[:5])
    mb, cb = gp.laplace_latent_numpy(pb, K[:5], np.diag(K)[:5])
    np.testing.assert_allclose(np.asarray(ma), mb, atol=1e-12)
    np.testing.assert_allclose(np.asarray(ca), cb, atol=1e-12)


def test_latent_predictive_distribution_matches_dense_formula():
    x_test = RNG.normal(size=(4, 3))
    ks, kss = np.asarray(nf.kernel(NET, x_test, X)), np.asarray(nf.kernel(NET, x_test))
    mode = gp.laplace_mode_numpy(K, Y)
    mean, cov = gp.laplace_latent_numpy(gp.laplace_predictor_numpy(K, Y, mode.f), ks, np.diag(kss))
    pi = softmax(mode.f)
    n, c = pi.shape
    w = dense_w(pi)
    kbig = np.kron(np.eye(c), K)
    # GPML eqs. 3.41-3.42 (Sigma* = diag k** - Q*^T (K + W^-1)^-1 Q*), written with W (singular here):
    # (K + W^-1)^-1 = W (I + K W)^-1
    middle = w @ np.linalg.inv(np.eye(n * c) + kbig @ w)
    for m in range(4):
        q = np.kron(np.eye(c), ks[m][:, None])  # (nC, C)
        np.testing.assert_allclose(mean[m], q.T @ (Y - pi).T.reshape(-1), atol=1e-12)
        np.testing.assert_allclose(cov[m], kss[m, m] * np.eye(c) - q.T @ middle @ q, atol=1e-10)


def test_laplace_evidence_gradient_matches_finite_differences():
    """d/ds, d/dt of the Laplace evidence of K(s, t) = s K + t A: the implicit derivative through the
    mode (one Newton step from the stopped mode). The chain rule into the network's hyper-parameters
    is netfield.kernel's autodiff, checked in test_gp_regression.py."""
    a = np.exp(-0.5 * np.sum((X[:, None] - X[None]) ** 2, axis=2))  # another kernel matrix

    def evidence(s, t):
        return gp.laplace_log_evidence(s * K + t * a, Y)

    both = jax.jit(jax.value_and_grad(evidence, argnums=(0, 1)))

    def ev(s, t):
        return float(both(s, t)[0])

    g = both(1.0, 0.5)[1]
    h = 1e-5
    assert float(g[0]) == pytest.approx((ev(1.0 + h, 0.5) - ev(1.0 - h, 0.5)) / (2 * h), rel=1e-6)
    assert float(g[1]) == pytest.approx((ev(1.0, 0.5 + h) - ev(1.0, 0.5 - h)) / (2 * h), rel=1e-6)


def test_softmax_expectation():
    mean = np.array([[0.3, -0.2, 1.0]])
    p = gp.softmax_expectation(mean, np.zeros((1, 3, 3)), n_samples=10)
    np.testing.assert_allclose(p, softmax(mean), atol=1e-15)  # no variance: the softmax itself
    cov = np.array([[[1.0, 0.3, 0.0], [0.3, 2.0, 0.1], [0.0, 0.1, 0.5]]])
    z = np.random.default_rng(99).multivariate_normal(mean[0], cov[0], size=400_000)
    exact = softmax(z).mean(axis=0)
    approx = gp.softmax_expectation(mean, cov, n_samples=20_000, seed=1)
    np.testing.assert_allclose(approx[0], exact, atol=0.01)
    np.testing.assert_allclose(approx.sum(axis=1), 1.0)
    # common random numbers: a point's probabilities do not depend on the batch
    both = gp.softmax_expectation(np.vstack([mean, -mean]), np.vstack([cov, cov]), n_samples=500, seed=3)
    np.testing.assert_array_equal(both[:1], gp.softmax_expectation(mean, cov, n_samples=500, seed=3))


def test_binary_problem_is_the_two_class_softmax():
    y, _ = gp.class_indicators(X[:, 0] > 0)
    mode = gp.laplace_mode_numpy(K, y)
    assert mode.converged and mode.f.shape == (24, 2)
    # the two latent functions are antisymmetric around their mean (softmax is shift invariant)
    np.testing.assert_allclose(mode.f.sum(axis=1), 0.0, atol=1e-10)


@pytest.mark.parametrize("call, match", [
    (lambda: gp.one_hot(["a", "a"]), "at least 2 classes, got 1"),
    (lambda: gp.one_hot([1, 2, 5], classes=[1, 2]), "not among classes"),
    (lambda: gp.laplace_mode(K, Y - 0.1), "0/1 class-indicator matrix"),
    (lambda: gp.laplace_mode(K[:5, :5], Y), "must be a square"),
    (lambda: gp.laplace_mode_numpy(K, Y, max_iter=0), "max_iter must be an integer >= 1"),
    (lambda: gp.softmax_expectation(np.zeros((1, 2)), np.zeros((1, 2, 2)), n_samples=0), "n_samples"),
])
def test_bad_input_is_named(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


def _linalg_operand_ranks(jaxpr):
    """ndim of every cholesky / triangular_solve operand in a jaxpr and its sub-jaxprs (scan, while, ...)."""
    out = []
    for eqn in jaxpr.eqns:
        if eqn.primitive.name in ("cholesky", "triangular_solve"):
            out += [v.aval.ndim for v in eqn.invars]
        for param in eqn.params.values():
            for sub in param if isinstance(param, (list, tuple)) else [param]:
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    out += _linalg_operand_ranks(inner)
    return out


def test_jax_laplace_path_makes_no_batched_lapack_calls():
    """Batched LAPACK kernels deadlocked XLA's 2-thread pool (maximize_laplace_evidence hung on 2 cores);
    the JAX backend factors the per-class matrices one at a time."""
    import jax

    from netfield.gp import laplace_log_evidence

    rng = np.random.default_rng(0)
    a = rng.normal(size=(12, 12))
    k = a @ a.T / 12 + 0.1 * np.eye(12)
    y = np.eye(3)[rng.integers(0, 3, 12)]
    jaxpr = jax.make_jaxpr(jax.value_and_grad(lambda kk: laplace_log_evidence(kk, y)))(k)
    ranks = _linalg_operand_ranks(jaxpr.jaxpr)
    assert ranks and max(ranks) == 2, ranks
