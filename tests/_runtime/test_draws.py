"""netfield._runtime.draws.normal draws exactly what jax.random.normal draws (so every sampled network
stays the same), also under vmap over keys, for matrices, vectors and higher ranks, in both precisions."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from netfield._runtime import draws


@pytest.mark.parametrize("shape", [(16, 16), (5, 3), (7,), (2, 3, 4), ()])
@pytest.mark.parametrize("dtype", [jnp.float64, jnp.float32])
def test_flat_draw_equals_jax_draw(shape, dtype):
    key = jax.random.fold_in(jax.random.PRNGKey(3), 11)
    got = draws.normal(key, shape, dtype)
    assert got.shape == shape and got.dtype == dtype
    np.testing.assert_array_equal(np.asarray(got), np.asarray(jax.random.normal(key, shape, dtype)))


def test_flat_draw_equals_jax_draw_under_vmap_and_jit():
    keys = jax.vmap(lambda i: jax.random.fold_in(jax.random.PRNGKey(5), i))(jnp.arange(3))
    got = jax.jit(jax.vmap(lambda k: draws.normal(k, (16, 16))))(keys)
    want = jax.vmap(lambda k: jax.random.normal(k, (16, 16), jnp.float64))(keys)
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    # and different keys give different draws (the equality above is not that of two constants)
    assert not np.allclose(np.asarray(got[0]), np.asarray(got[1]))


@pytest.mark.parametrize("dtype", [jnp.float64, jnp.float32])
@pytest.mark.parametrize("shapes", [
    [(6, 6), (6, 3), (6,), (6, 6), (6,), (6, 6), (6,), (), (1,)],  # every shape in the single hash
    [(6, 3)] + [(6, 6), (6,)] * draws.LOOPED_GROUP + [(2,)],  # two shapes drawn in loops, the rest hashed
], ids=["hashed", "looped"])
def test_folded_draws_equal_one_draw_per_parameter(dtype, shapes):

    def looped(i):
        key = jax.random.fold_in(jax.random.PRNGKey(2), i)
        return [jax.random.normal(jax.random.fold_in(key, k), s, dtype) for k, s in enumerate(shapes)]

    def folded(i):
        return draws.folded_normals(jax.random.fold_in(jax.random.PRNGKey(2), i), shapes, dtype)

    for got, want in zip(folded(0), looped(0)):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    # vmapped over networks and compiled, as the samplers run it
    got = jax.jit(jax.vmap(folded))(jnp.arange(3))
    want = jax.vmap(looped)(jnp.arange(3))
    for g, w, shape in zip(got, want, shapes):
        assert g.shape == (3, *shape) and g.dtype == dtype
        np.testing.assert_array_equal(np.asarray(g), np.asarray(w))
    i, j = [k for k, shape in enumerate(shapes) if shape == (6, 6)][:2]
    assert not np.allclose(np.asarray(got[i][0]), np.asarray(got[j][0]))  # two parameters differ


def test_folded_draws_compile_one_hash():
    """All parameters' draws are one threefry hash (the point of folded_normals: one to compile)."""
    shapes = [(8, 8), (8, 3), (8,), (4,)]
    text = jax.jit(jax.vmap(lambda i: draws.folded_normals(jax.random.fold_in(jax.random.PRNGKey(0), i), shapes)))
    jaxpr = str(jax.make_jaxpr(text)(jnp.arange(2)))
    # one hash for the draws (the parameters' keys come from one vmapped fold_in); no per-parameter draw
    assert jaxpr.count("threefry2x32") == 1 and "random_bits" not in jaxpr, jaxpr
    assert jaxpr.count("random_fold_in") <= 2, jaxpr  # the network's key and the parameters' keys
