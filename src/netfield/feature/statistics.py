"""Error bars and convergence diagnostics of the posterior sampler's chains (docs/feature.md).

Batch means: the samples of each chain are split into B = floor(sqrt(samples)) consecutive batches of
(nearly) equal size b_i; with batch means m_ci, grand mean m and N = chains * samples,

    se^2 = sum_ci b_i (m_ci - m)^2 / (chains * B - 1) / N,

the batch-means estimate of the variance of the mean. The integrated autocorrelation time uses Sokal's
automatic window; ``split_rhat`` is the split-R-hat.
"""

from __future__ import annotations

import numpy as np


def batch_stats(sums, sizes, chains):
    """Grand mean and batch-means standard error from per-(chain, batch) sums (module docstring)."""
    sizes = np.asarray(sizes, float)
    shape = (1, -1) + (1,) * (sums.ndim - 2)
    total = sizes.sum() * chains
    mean = sums.sum(axis=(0, 1)) / total
    means = sums / sizes.reshape(shape)
    count = chains * len(sizes)
    if count < 2:
        return mean, np.full_like(mean, np.nan)
    var = (sizes.reshape(shape) * (means - mean) ** 2).sum(axis=(0, 1)) / (count - 1)
    return mean, np.sqrt(var / total)


def autocorr_time(trace, c=5.0):
    """Integrated autocorrelation time of (chains, N) series, Sokal's automatic window."""
    x = np.asarray(trace, float)
    N = x.shape[1]
    if N < 4:
        return float("nan")
    x = x - x.mean()
    f = np.fft.rfft(x, n=2 * N, axis=1)
    acf = np.fft.irfft(f * np.conj(f), axis=1)[:, :N].mean(axis=0)
    if acf[0] <= 0:
        return float("nan")
    rho = acf / acf[0]
    taus = 2.0 * np.cumsum(rho) - 1.0
    window = np.arange(N) >= c * taus
    W = int(np.argmax(window)) if window.any() else N - 1
    return float(taus[W])


def split_rhat(trace):
    x = np.asarray(trace, float)
    half = x.shape[1] // 2
    if half < 2:
        return float("nan")
    parts = np.concatenate([x[:, :half], x[:, half:2 * half]])
    means, variances = parts.mean(axis=1), parts.var(axis=1, ddof=1)
    W = variances.mean()
    B = half * means.var(ddof=1)
    if W <= 0:
        return float("nan")
    return float(np.sqrt(((half - 1) / half * W + B / half) / W))
