"""Monte-Carlo Gaussian expectations with standard errors: the oracle for the closed forms and rules."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from .activations import correlation, get_activation, safe_sqrt


def pair_mc(activation, cuu, cvv, cuv, *, samples: int = 200_000, seed: int = 0, derivative: int = 0):
    """Estimate E[phi(u) phi(v)] (derivative=0) or E[phi'(u) phi'(v)] (derivative=1) by sampling.

    Uses antithetic pairs (z, -z). Returns (mean, standard_error) for scalar covariances.
    """
    act = get_activation(activation)
    f = act.fn if derivative == 0 else jnp.vectorize(jax.grad(act.fn))
    key = jax.random.PRNGKey(seed)
    z = jax.random.normal(key, (2, samples // 2))
    c = correlation(cuu, cvv, cuv)
    su, sv, s = safe_sqrt(cuu), safe_sqrt(cvv), safe_sqrt(1 - c * c)
    vals = []
    for sgn in (1.0, -1.0):
        z1, z2 = sgn * z[0], sgn * z[1]
        vals.append(f(su * z1) * f(sv * (c * z1 + s * z2)))
    pairs = 0.5 * (vals[0] + vals[1])
    mean = jnp.mean(pairs)
    return float(mean), float(jnp.std(pairs) / jnp.sqrt(pairs.size))
