"""Infinite-width training dynamics: wide networks trained by gradient descent (docs/training.md).

At infinite width a network trained by full-batch gradient descent on the squared loss evolves as its
linearisation (Lee et al. 2019): its outputs stay Gaussian, with mean and covariance given by the NNGP
kernel K and the neural tangent kernel Theta. :func:`train` computes them for a network;
:mod:`.theory` from given kernel blocks (:func:`predict_from_kernels`), with the stability bound
:func:`max_learning_rate` and the NTK-GP posterior :func:`ntk_gp_posterior`.

Example:
    >>> import numpy as np
    >>> from netfield.training import max_learning_rate, predict_from_kernels
    >>> k = np.array([[2.0, 0.5], [0.5, 1.0]]); th = 2 * k           # NNGP and NTK blocks of 2 points
    >>> p = predict_from_kernels(k, k[:1], k[:1, :1], th, th[:1], np.array([1.0, -1.0]), [0, 1, np.inf])
    >>> p.max_learning_rate == max_learning_rate(th)
    True
"""

from .network import kernel_blocks, train
from .result import OutputsAt, TrainingPrediction
from .theory import (
    DYNAMICS,
    NTKPosterior,
    NTKSpectrum,
    max_learning_rate,
    mode_factors,
    ntk_gp_posterior,
    ntk_spectrum,
    predict_from_kernels,
)

__all__ = ["DYNAMICS", "NTKPosterior", "NTKSpectrum", "OutputsAt", "TrainingPrediction", "kernel_blocks",
           "max_learning_rate", "mode_factors", "ntk_gp_posterior", "ntk_spectrum", "predict_from_kernels",
           "train"]
