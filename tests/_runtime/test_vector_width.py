"""512-bit vectors for the fused kernel tiles (_runtime/vector_width.py): the same numbers, bit for bit."""

import jax
import numpy as np
import pytest

from netfield._runtime import vector_width
from netfield.gauss import ACTIVATIONS
from netfield.meanfield.factorisations import factorisation


def test_option_only_on_avx512_cpus_and_off_by_environment(monkeypatch):
    vector_width.wide_vector_options.cache_clear()
    try:
        expected = {"xla_cpu_prefer_vector_width": 512} if (
            jax.default_backend() == "cpu" and "avx512f" in vector_width._cpu_flags()) else {}
        assert vector_width.wide_vector_options() == expected
        vector_width.wide_vector_options.cache_clear()
        monkeypatch.setenv(vector_width.ENV, "256")
        assert vector_width.wide_vector_options() == {}
    finally:
        vector_width.wide_vector_options.cache_clear()


@pytest.mark.parametrize("name", ["erf", "relu"])
def test_wide_vectors_give_bit_identical_entries(name):
    """The NNGP and NTK per-entry maps of the fused tiles, compiled with 512-bit vectors, equal the
    default compilation bit for bit (each element goes through the same operations). Fails if the
    option changed the arithmetic (e.g. a different polynomial evaluation or contraction)."""
    if jax.default_backend() != "cpu":
        pytest.skip("xla_cpu_prefer_vector_width is an option of XLA's CPU back end only")
    prep, entry, dentry = factorisation(ACTIVATIONS[name])
    rng = np.random.default_rng(0)
    d1, d2 = rng.uniform(0.1, 3.0, 4099), rng.uniform(0.1, 3.0, 4099)
    k = rng.uniform(-1, 1, 4099) * np.sqrt(d1 * d2)

    def f(k, d1, d2):
        p1, p2 = prep(d1), prep(d2)
        return entry(k, p1, p2), dentry(k, p1, p2)

    plain = jax.jit(f)(k, d1, d2)
    wide = jax.jit(f, compiler_options={"xla_cpu_prefer_vector_width": 512})(k, d1, d2)
    for a, b in zip(plain, wide):
        assert np.array_equal(np.asarray(a), np.asarray(b))
        assert np.all(np.isfinite(np.asarray(a)))
