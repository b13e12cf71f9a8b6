"""netfield._runtime.draws.box_muller_normals: standard normal in law (moments, tails, a two-sample test
against jax.random.normal, independence of the two halves of each pair), reproducible per key, the
vectorised log and cos / sin it is built from accurate to a few ulp, and clear errors for bad keys."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from netfield._runtime import draws


def _keys(count, seed=0):
    return draws.folded_keys(jax.random.PRNGKey(seed), count)


@pytest.mark.parametrize("dtype", [jnp.float64, jnp.float32])
def test_moments_tails_and_two_sample_test(dtype):
    z = np.asarray(draws.box_muller_normals(_keys(4), (250, 1000), dtype), np.float64)  # stacked: (4, 250, 1000)
    assert z.shape == (4, 250, 1000) and z.dtype == np.float64
    flat = z.ravel()
    m = flat.size  # 1e6 draws: the standard errors below are exact for a standard normal law
    se = {"mean": 1 / math.sqrt(m), "var": math.sqrt(2 / m), "skew": math.sqrt(6 / m), "kurt": math.sqrt(24 / m)}
    got = {"mean": flat.mean(), "var": flat.var() - 1, "skew": stats.skew(flat), "kurt": stats.kurtosis(flat)}
    for name, value in got.items():  # 5 standard errors: a 1 % error in the scale (var 0.02) fails at 7
        assert abs(value) < 5 * se[name], (name, value, se[name])
    # tail probabilities beyond 2, 3, 4 (binomial standard errors)
    for edge in (2.0, 3.0, 4.0):
        p = 2 * stats.norm.sf(edge)
        assert abs(np.mean(np.abs(flat) > edge) - p) < 5 * math.sqrt(p * (1 - p) / m), edge
    # against jax.random.normal's draws of the same size: the two-sample KS test
    ref = np.asarray(jax.random.normal(jax.random.PRNGKey(9), (200_000,), dtype), np.float64)
    assert stats.ks_2samp(flat[:200_000], ref).pvalue > 1e-3


def test_pairs_are_independent_and_slices_differ():
    z = np.asarray(draws.box_muller_normals(_keys(3), (2, 50_000)))
    h = z.reshape(3, -1)
    # z = r (cos, sin): the two members of a pair (first and second half) are uncorrelated, and so are
    # their squares (a radius shared badly would correlate them: r^2 cos^2 against r^2 sin^2)
    first, second = h[:, :50_000].ravel(), h[:, 50_000:].ravel()
    for a, b in ((first, second), (first**2, second**2)):
        r = np.corrcoef(a, b)[0, 1]
        assert abs(r) < 5 / math.sqrt(a.size), r
    assert not np.allclose(z[0], z[1]) and not np.allclose(z[1], z[2])


def test_reproducible_per_key_and_odd_sizes():
    keys = _keys(3, seed=4)
    draw = jax.jit(lambda k: draws.box_muller_normals(k, (5, 7)))
    a = np.asarray(draw(keys))
    np.testing.assert_array_equal(a, np.asarray(draw(keys)))
    # slice k depends on key k only: drawing a subset of the keys gives the same slices
    np.testing.assert_array_equal(np.asarray(draw(keys[1:])), a[1:])
    # op by op (not compiled as one program) the transform rounds differently, by an ulp or so
    np.testing.assert_allclose(np.asarray(draws.box_muller_normals(keys, (5, 7))), a, rtol=1e-14, atol=1e-15)
    assert [z.shape for z in draws.box_muller_normals(keys, (1,))] == [(1,)] * 3
    assert [z.shape for z in draws.box_muller_normals(keys, (0, 4))] == [(0, 4)] * 3
    assert all(z.dtype == jnp.float32 for z in draws.box_muller_normals(keys, (2,), jnp.float32))
    assert np.isfinite(a).all()


def test_log_and_cos_sin_accuracy():
    for dtype in (np.float64, np.float32):
        finfo = np.finfo(dtype)
        x = np.concatenate([np.geomspace(finfo.tiny, finfo.max / 2, 200_001),
                            np.linspace(0.5, 2.0, 200_001)]).astype(dtype)
        got = np.asarray(draws._log_positive(jnp.asarray(x)), np.float64)
        want = np.log(x.astype(np.float64))
        keep = want != 0
        ulp = np.abs(got - want)[keep] / np.spacing(np.abs(want[keep]).astype(dtype)).astype(np.float64)
        assert ulp.max() <= 3.5, (dtype, ulp.max())
    u = np.linspace(0.0, 1.0, 400_001, endpoint=False)
    cos, sin = (np.asarray(v) for v in draws._cos_sin_turns(jnp.asarray(u)))
    assert np.abs(cos - np.cos(2 * np.pi * u)).max() < 2e-15
    assert np.abs(sin - np.sin(2 * np.pi * u)).max() < 2e-15


@pytest.mark.parametrize("keys, dtype, match", [
    (np.zeros((2, 3), np.uint32), jnp.float64, "keys must be raw threefry keys"),
    (np.zeros((2, 2), np.int32), jnp.float64, "keys must be raw threefry keys"),
    (np.zeros((2, 2), np.uint32), jnp.int32, "dtype must be float32 or float64"),
])
def test_bad_arguments(keys, dtype, match):
    with pytest.raises(ValueError, match=match):
        draws.box_muller_normals(keys, (3,), dtype)
