"""scikit-learn integration: NNGP estimators and a network kernel for sklearn's GPs and SVMs.

- :class:`NNGPRegressor`: GP regression with a network's readout kernel (GPML Alg. 2.1), optional
  evidence maximisation (GPML 5.4.1); scales to N = 10,000 (in-place Cholesky).
- :class:`NNGPClassifier`: GP regression on centred one-hot labels (``method="regression"``, the
  default) or the multi-class softmax Laplace GP classifier (``method="laplace"``, GPML Alg. 3.3 / 3.4).
- :class:`NetworkKernel`: a :class:`sklearn.gaussian_process.kernels.Kernel` for
  ``GaussianProcessRegressor`` / ``GaussianProcessClassifier``, and a callable for
  ``SVC(kernel=NetworkKernel(...))`` or ``SVC(kernel="precomputed")`` with ``NetworkKernel(...)(X, Y)``.

All three follow the estimator contract: ``__init__`` only stores its arguments, validation happens
in ``fit`` / ``__call__``, fitted attributes end in ``_``.

Inputs are 2-D, (N, d). With ``time_steps=T`` each row is read as a sequence of T vectors of
dimension d / T (e.g. an 8 x 8 image as 8 rows of 8 pixels: x_t = row t enters at step t).

The estimators standardise their inputs by default (``standardize=True``): each feature is centred
and all are divided by one number so that mean |x|^2 / d = 1 on the training set, the scale the
network kernel expects (inputs enter the network divided by d, docs/theory.md 1); the statistics
are learned in ``fit`` (``x_mean_``, ``x_scale_``) and applied in ``predict``. This is what
``netfield gp`` does. With ``standardize=False`` inputs far from that scale draw a warning.
"""

from __future__ import annotations

import math
import numbers
import re
import warnings

import jax
import jax.numpy as jnp
import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.gaussian_process.kernels import Hyperparameter, Kernel
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from .._checks import check_choice, check_positive_int, check_variance
from ..program import HYPER_PARAMETERS, Network, batchnorm_mlp, conv, dnn, gru, lstm, rnn, transformer
from .classify import laplace_latent_numpy, laplace_mode_numpy, laplace_predictor_numpy, softmax_expectation
from .gram import check_readout, gram_matrix, kernel_diag, network_kernel
from .optimize import maximize_evidence, maximize_laplace_evidence
from .regression import _with_values, fit_network

BUILDERS = {"dnn": dnn, "rnn": rnn, "gru": gru, "lstm": lstm, "transformer": transformer, "conv": conv,
            "batchnorm_mlp": batchnorm_mlp}
ARCHITECTURES = tuple(BUILDERS)
METHODS = ("regression", "laplace")  # classifier methods, the default first; ``netfield gp --method`` uses them
UNIT_SCALE = (0.1, 10.0)  # mean |x|^2 / d outside this range: inputs far from unit scale (standardize=False)


def input_scaling(x) -> tuple:
    """(mean, scale) that standardise ``x`` (N, ...): ``(x - mean) / scale`` has each feature centred
    and mean |x|^2 / d = 1 over the N patterns (one scale for all features: their relative sizes,
    e.g. the pixels of an image, are kept). A constant ``x`` gets scale 1."""
    x = np.asarray(x, dtype=np.float64)
    mean = x.mean(axis=0)
    scale = float(np.sqrt(np.mean((x - mean) ** 2))) if x.size else 0.0
    return mean, (scale if scale > 0 and math.isfinite(scale) else 1.0)


def _warn_scale(X, stacklevel=3):
    """Warn when mean |x|^2 / d of (unstandardised) inputs is far from 1."""
    second = float(np.mean(X ** 2)) if X.size else 0.0
    if second > 0 and not UNIT_SCALE[0] <= second <= UNIT_SCALE[1]:
        warnings.warn(f"inputs have mean |x|^2 / d = {second:.3g}, far from the unit scale the network kernel "
                      f"expects (docs/theory.md 1); pass standardize=True (the default) or rescale X",
                      UserWarning, stacklevel=stacklevel)


def _build_network(architecture, depth, activation, hyper, net=None):
    """The estimator's network: ``net`` (any network) or the builder named ``architecture`` with
    ``depth`` (layers / steps / blocks) and ``activation``; hyper-parameters that are not None
    replace the network's (None: the network's own value, or the builder's default)."""
    given = {k: v for k, v in hyper.items() if v is not None}
    if net is not None:
        if not isinstance(net, Network):
            raise TypeError(f"net must be a network (netfield.dnn, rnn, gru, ...) or None, got {type(net).__name__}")
        unknown = set(given) - set(net.hyper_names)
        if unknown:
            raise ValueError(f"the {net.name} network has no hyper-parameter(s) {sorted(unknown)}; it has "
                             f"{', '.join(net.hyper_names)}")
        return net.replace(**given) if given else net
    check_choice("architecture", architecture, ARCHITECTURES)
    return BUILDERS[architecture](depth, activation, **given)


def _sequences(X: np.ndarray, time_steps):
    """(N, d) -> (N, T, d / T) when ``time_steps`` is given (row t of each pattern enters at step t)."""
    if time_steps is None:
        return X
    t = check_positive_int("time_steps", time_steps)
    if X.shape[1] % t:
        raise ValueError(f"time_steps = {t} must divide the number of features, got X with {X.shape[1]} features")
    return X.reshape(X.shape[0], t, X.shape[1] // t)


def _check_optimize(optimize, allowed):
    if optimize is False or optimize is None:
        return None
    if optimize is True:
        return "default"
    names = (optimize,) if isinstance(optimize, str) else tuple(optimize)
    if not names or any(p not in allowed for p in names):
        raise ValueError(f"optimize must be False, True or a tuple of names among {', '.join(allowed)}, "
                         f"got {optimize!r}")
    return names


# ---- the kernel ----------------------------------------------------------------------------------

class NetworkKernel(Kernel):
    """A network's NNGP readout kernel as a scikit-learn GP kernel (docs/theory.md 2.1, 2.2).

    Hyper-parameters (variances, optimised on a log scale by sklearn) are weight_var, bias_var,
    input_var, readout_var and readout_bias_var, each with ``<name>_bounds`` ((low, high) or
    ``"fixed"``). A variance of exactly 0 is held fixed: its logarithm, sklearn's ``theta``, would
    be -inf. Gradients for ``eval_gradient=True`` are forward-mode JAX derivatives through the kernel.

    Args:
        architecture: a builder name, ``"dnn"``, ``"rnn"``, ``"gru"``, ``"lstm"``, ``"transformer"``,
            ``"conv"`` or ``"batchnorm_mlp"`` (ignored when ``net`` is given).
        depth: number of layers / time steps / blocks.
        activation: name or JAX-traceable callable (see :func:`netfield.dnn`).
        net: any network (e.g. ``netfield.gru(8)``); its hyper-parameters are the kernel's unless
            given here.
        weight_var, ...: the hyper-parameters; None (default) takes the network's own value.
        readout: ``"last"``, ``"mean"`` or a tuple of steps (:mod:`netfield.gp.gram`).
        time_steps: read each row of X as a sequence of this many steps (``None``: static input).

    Example:
        >>> import numpy as np
        >>> from sklearn.gaussian_process import GaussianProcessRegressor
        >>> from netfield.gp import NetworkKernel
        >>> x = np.random.default_rng(0).normal(size=(20, 2)); y = np.sin(x[:, 0])
        >>> gpr = GaussianProcessRegressor(NetworkKernel(depth=2, bias_var=0.1), alpha=1e-3).fit(x, y)
        >>> gpr.kernel_.depth
        2
    """

    def __init__(self, architecture="dnn", depth=3, activation="erf", weight_var=None, bias_var=None,
                 input_var=None, readout_var=None, readout_bias_var=None, readout="last", time_steps=None,
                 weight_var_bounds=(1e-2, 1e2), bias_var_bounds=(1e-5, 1e2), input_var_bounds=(1e-3, 1e3),
                 readout_var_bounds=(1e-3, 1e3), readout_bias_var_bounds=(1e-5, 1e2), net=None):
        self.net = net
        self.architecture = architecture
        self.depth = depth
        self.activation = activation
        self.weight_var = weight_var
        self.bias_var = bias_var
        self.input_var = input_var
        self.readout_var = readout_var
        self.readout_bias_var = readout_bias_var
        self.readout = readout
        self.time_steps = time_steps
        self.weight_var_bounds = weight_var_bounds
        self.bias_var_bounds = bias_var_bounds
        self.input_var_bounds = input_var_bounds
        self.readout_var_bounds = readout_var_bounds
        self.readout_bias_var_bounds = readout_bias_var_bounds

    def get_params(self, deep=True):
        """The parameters, hyper-parameters resolved to numbers (None -> the network's value): sklearn
        reads ``theta`` from them."""
        params = super().get_params(deep)
        if all(params.get(k) is not None for k in HYPER_PARAMETERS):
            return params
        net = self._raw_network()
        for k in HYPER_PARAMETERS:
            if params.get(k) is None:
                params[k] = float(net.hyper(k))
        return params

    def _value(self, name):
        value = getattr(self, name)
        return float(self._raw_network().hyper(name)) if value is None else value

    def _raw_network(self):
        return _build_network(self.architecture, self.depth, self.activation,
                              {k: getattr(self, k) for k in HYPER_PARAMETERS}, self.net)

    def _hyper(self, name):
        bounds = getattr(self, f"{name}_bounds")
        fixed = (isinstance(bounds, str) and bounds == "fixed") or float(self._value(name)) == 0.0
        return Hyperparameter(name, "numeric", "fixed" if fixed else bounds, fixed=fixed)

    @property
    def hyperparameter_weight_var(self):
        return self._hyper("weight_var")

    @property
    def hyperparameter_bias_var(self):
        return self._hyper("bias_var")

    @property
    def hyperparameter_input_var(self):
        return self._hyper("input_var")

    @property
    def hyperparameter_readout_var(self):
        return self._hyper("readout_var")

    @property
    def hyperparameter_readout_bias_var(self):
        return self._hyper("readout_bias_var")

    @property
    def network(self):
        """The :class:`netfield.Network` these parameters describe."""
        return self._raw_network()

    def _inputs(self, X, name="X"):
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2:
            raise ValueError(f"{name} must be a 2-D array (N, d), got shape {X.shape}")
        return _sequences(X, self.time_steps)

    def __call__(self, X, Y=None, eval_gradient=False):
        """K(X, Y), and with ``eval_gradient`` the (N, N, n_free) derivative w.r.t. the log-parameters."""
        net = self.network
        readout = check_readout(self.readout)
        x = self._inputs(X)
        if not eval_gradient:  # writable copies: sklearn adds alpha to the diagonal in place
            y = None if Y is None else self._inputs(Y, "Y")
            return np.array(network_kernel(net, x, y, readout))
        if Y is not None:
            raise ValueError("Gradient can only be evaluated when Y is None.")
        free = [h.name for h in self.hyperparameters if not h.fixed]
        if not free:
            return np.array(network_kernel(net, x, None, readout)), np.empty((x.shape[0], x.shape[0], 0))

        def kernel_of(theta):
            k = network_kernel(_with_values(net, {p: jnp.exp(theta[i]) for i, p in enumerate(free)}), x, None, readout)
            return k, k

        theta = jnp.log(jnp.array([float(self._value(p)) for p in free]))
        grad, k = jax.jacfwd(kernel_of, has_aux=True)(theta)  # d K / d log(theta), forward mode
        return np.array(k), np.array(grad)

    def diag(self, X):
        """diag K(X, X) without the full matrix."""
        return kernel_diag(self.network, self._inputs(X), check_readout(self.readout))

    def is_stationary(self):
        return False

    def __repr__(self):
        hp = ", ".join(f"{k}={self._value(k):.3g}" for k in HYPER_PARAMETERS)
        if self.net is not None:
            return f"NetworkKernel({self.net.name}, {hp})"
        return f"NetworkKernel({self.architecture}, depth={self.depth}, {self.activation!r}, {hp})"


def _validate(estimator, X, y="no_validation", **kwargs):
    """scikit-learn's ``validate_data``, its errors naming the argument they are about (``X``, or ``X and
    y`` for different numbers of samples) where its message does not."""
    try:
        return validate_data(estimator, X, y, **kwargs)
    except ValueError as err:
        text = str(err)
        if re.search(r"\b(X|y)\b", text):
            raise
        name = "X and y" if "inconsistent numbers of samples" in text else "X"
        raise ValueError(f"{name}: {text}") from err


# ---- estimators ----------------------------------------------------------------------------------

class _NetworkEstimator(BaseEstimator):
    """Shared parameters and helpers of the NNGP estimators."""

    def _hyper(self):
        return {k: getattr(self, k) for k in HYPER_PARAMETERS}

    def _network(self):
        return _build_network(self.architecture, self.depth, self.activation, self._hyper(), self.net)

    def _fit_scaling(self, X):
        """Learn (``standardize=True``) or check (``False``) the input scale on the training X."""
        if not isinstance(self.standardize, (bool, np.bool_)):
            raise TypeError(f"standardize must be True or False, got {self.standardize!r}")
        if self.standardize:
            if X.shape[0] < 2:
                raise ValueError(f"standardize=True estimates the input scale from at least 2 samples, got "
                                 f"{X.shape[0]} sample; pass more patterns or standardize=False")
            self.x_mean_, self.x_scale_ = input_scaling(X)
        else:
            _warn_scale(X, stacklevel=4)
            self.x_mean_, self.x_scale_ = np.zeros(X.shape[1]), 1.0

    def _x(self, X):
        """Standardised (with the training statistics) and read as sequences (``time_steps``)."""
        return _sequences((X - self.x_mean_) / self.x_scale_, self.time_steps)


class NNGPRegressor(RegressorMixin, _NetworkEstimator):
    """GP regression with the NNGP kernel of a deep or recurrent network (docs/theory.md 2.3).

    Args:
        architecture, depth, activation: the network prior built by name (``"dnn"``, ``"rnn"``,
            ``"gru"``, ``"lstm"``, ``"transformer"``, ``"conv"``, ``"batchnorm_mlp"``), or
        net: any network object (``NNGPRegressor(net=netfield.gru(8))``; then architecture, depth
            and activation are not used).
        weight_var, bias_var, input_var, readout_var, readout_bias_var: None (default) keeps the
            network's own value (the builder's default); a number replaces it.
        noise: observation-noise variance added to the kernel's diagonal.
        readout: ``"last"``, ``"mean"`` or a tuple of steps.
        time_steps: read each row of X as a sequence of this many steps.
        optimize: ``False``; ``True`` to maximise the evidence over weight_var, bias_var, input_var,
            readout_var and noise (those that are > 0); or a tuple of names. Cost: one compilation
            (~1 s per layer / step) and then a few ms (N = 300) to ~2 s (N = 2000) per evidence
            evaluation, tens to 200 (``max_iter`` of :func:`netfield.gp.maximize_evidence`)
            evaluations; N and the number of optimised names are the levers.
        standardize: centre the features and scale them to mean |x|^2 / d = 1 with the training
            statistics (default True; see the module docstring); False uses X as given.
        progress: show the optimiser's progress on stderr while ``optimize`` runs (default True;
            False: quiet; a callable ``progress(k)`` is told about k more evidence evaluations).

    Attributes:
        x_mean_, x_scale_: the input standardisation learned in ``fit`` (zeros and 1.0 when
            ``standardize=False``).
        network_, noise_: the prior used (after optimisation).
        log_marginal_likelihood_value_: log evidence of the training targets.
        evidence_fit_: the :class:`netfield.gp.EvidenceFit` (``optimize``), else None.
        model_: the fitted :class:`netfield.gp.NetworkRegression`.

    Example:
        >>> import numpy as np
        >>> from netfield.gp import NNGPRegressor
        >>> x = np.random.default_rng(0).normal(size=(40, 3)); y = np.sin(x[:, 0])
        >>> reg = NNGPRegressor(depth=3, weight_var=2.0, noise=1e-3).fit(x, y)
        >>> reg.predict(x[:2], return_std=True)[1].shape
        (2,)
    """

    def __init__(self, architecture="dnn", depth=3, activation="erf", weight_var=None, bias_var=None,
                 input_var=None, readout_var=None, readout_bias_var=None, noise=1e-2, readout="last",
                 time_steps=None, optimize=False, standardize=True, progress=True, net=None):
        self.net = net
        self.architecture = architecture
        self.depth = depth
        self.activation = activation
        self.weight_var = weight_var
        self.bias_var = bias_var
        self.input_var = input_var
        self.readout_var = readout_var
        self.readout_bias_var = readout_bias_var
        self.noise = noise
        self.readout = readout
        self.time_steps = time_steps
        self.optimize = optimize
        self.standardize = standardize
        self.progress = progress

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True  # Y (N, k): k outputs share one kernel
        return tags

    def fit(self, X, y):
        """Fit the GP posterior (and optionally the hyper-parameters) on (X, y)."""
        X, y = _validate(self, X, y, multi_output=True, y_numeric=True, dtype=np.float64)
        net = self._network()
        noise = float(check_variance("noise", self.noise))
        readout = check_readout(self.readout)
        self._fit_scaling(X)
        x = self._x(X)
        wanted = _check_optimize(self.optimize, HYPER_PARAMETERS + ("noise",))
        self.evidence_fit_ = None
        if wanted is not None:
            fit = maximize_evidence(net, x, y, noise=noise, params=None if wanted == "default" else wanted,
                                    readout=readout, progress=self.progress)
            net, noise, self.evidence_fit_ = fit.network, fit.noise, fit
        self.model_ = fit_network(net, x, y, noise=noise, readout=readout)
        self.network_, self.noise_ = net, noise
        self.log_marginal_likelihood_value_ = self.model_.log_marginal_likelihood
        return self

    def predict(self, X, return_std=False, return_cov=False):
        """Posterior mean; with ``return_std`` / ``return_cov`` also its standard deviation / covariance
        (of the latent function, shared by all outputs; shape (M,) or (M, k) like sklearn's GPR)."""
        check_is_fitted(self)
        if return_std and return_cov:
            raise ValueError("return_std and return_cov cannot both be True; choose one")
        X = _validate(self, X, reset=False, dtype=np.float64)
        post = self.model_.predict(self._x(X), return_var=return_std, return_cov=return_cov)
        mean = post.mean
        if return_cov:
            cov = post.cov if mean.ndim == 1 else np.repeat(post.cov[:, :, None], mean.shape[1], axis=2)
            return mean, cov
        if return_std:
            std = np.sqrt(post.var)
            return mean, (std if mean.ndim == 1 else np.repeat(std[:, None], mean.shape[1], axis=1))
        return mean


class NNGPClassifier(ClassifierMixin, _NetworkEstimator):
    """GP classification with the NNGP kernel of a deep or recurrent network (docs/theory.md 2.3).

    ``method="regression"`` (default): GP regression on centred one-hot labels (the NNGP literature,
    Lee et al. 2018); class = argmax of the posterior mean, ``decision_function`` = that mean; no
    probabilities. One linear solve: fast, and accurate at the networks' default variances.
    ``method="laplace"``: multi-class softmax likelihood, Laplace approximation (GPML Alg. 3.3),
    probabilities by Monte Carlo over the Gaussian latent posterior with ``n_samples`` draws from
    ``random_state`` (GPML Alg. 3.4). ``readout_var`` sets the prior scale of the latent functions,
    hence how confident the probabilities can be: the default 1 is too small for most data (raise it
    to 10-100, or optimise it with ``optimize=("readout_var",)``). Memory O(C N^2).
    ``netfield gp --method`` takes the same names with the same default.

    Measured (scikit-learn's digits, 500 training and 300 test images, ``"rnn"``, depth 8,
    ``time_steps=8``, default variances): regression 95.7 % (68.7 % with ``standardize=False`` on the
    raw 0-16 pixels); Laplace 73.7 %, 86.7 % at readout_var = 10, 92.3 % at readout_var = 100.

    Args:
        noise: noise variance of ``method="regression"`` (unused by ``"laplace"``).
        max_iter, tol: Newton iterations and tolerance of the Laplace mode search.
        n_samples, random_state: Monte-Carlo draws and their seed (an int) for predict_proba.
        optimize: ``False``, ``True`` (evidence maximisation over the variances that are > 0 and,
            for ``"regression"``, noise) or a tuple of names. Cost as :class:`NNGPRegressor`; a
            Laplace evidence evaluation runs a Newton mode search and costs C times more.
        (the other arguments, ``standardize`` and ``progress`` included, as :class:`NNGPRegressor`).

    Attributes:
        classes_, network_, log_marginal_likelihood_value_, evidence_fit_, x_mean_, x_scale_;
        f_mode_: (N, C) latent posterior mode (``"laplace"``); model_: the regression (``"regression"``).

    Example:
        >>> import numpy as np
        >>> from netfield.gp import NNGPClassifier
        >>> x = np.random.default_rng(0).normal(size=(40, 2)); y = (x[:, 0] > 0).astype(int)
        >>> clf = NNGPClassifier(depth=2, method="laplace", readout_var=10.0).fit(x, y)
        >>> clf.predict_proba(x[:3]).shape
        (3, 2)
    """

    def __init__(self, architecture="dnn", depth=3, activation="erf", weight_var=None, bias_var=None,
                 input_var=None, readout_var=None, readout_bias_var=None, method="regression", noise=1e-2,
                 readout="last", time_steps=None, optimize=False, max_iter=100, tol=1e-9, n_samples=1000,
                 random_state=0, standardize=True, progress=True, net=None):
        self.net = net
        self.architecture = architecture
        self.depth = depth
        self.activation = activation
        self.weight_var = weight_var
        self.bias_var = bias_var
        self.input_var = input_var
        self.readout_var = readout_var
        self.readout_bias_var = readout_bias_var
        self.method = method
        self.noise = noise
        self.readout = readout
        self.time_steps = time_steps
        self.optimize = optimize
        self.max_iter = max_iter
        self.tol = tol
        self.n_samples = n_samples
        self.random_state = random_state
        self.standardize = standardize
        self.progress = progress

    def _check_settings(self):
        check_choice("method", self.method, METHODS)
        check_positive_int("max_iter", self.max_iter)
        check_positive_int("n_samples", self.n_samples)
        if isinstance(self.random_state, bool) or not isinstance(self.random_state, numbers.Integral):
            raise TypeError(f"random_state must be an int seed, got {self.random_state!r}")
        tol = check_variance("tol", self.tol, allow_zero=False)
        return float(tol)

    def fit(self, X, y):
        """Fit the latent posterior (and optionally the hyper-parameters) on (X, y)."""
        tol = self._check_settings()
        X, y = _validate(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        self.classes_, index = np.unique(y, return_inverse=True)
        c = self.classes_.shape[0]
        if c < 2:
            raise ValueError(f"y must contain at least 2 classes, got 1 class: {self.classes_.tolist()}")
        indicators = np.eye(c)[index]
        net = self._network()
        noise = float(check_variance("noise", self.noise))
        readout = check_readout(self.readout)
        self._fit_scaling(X)
        x = self._x(X)
        allowed = HYPER_PARAMETERS + (("noise",) if self.method == "regression" else ())
        wanted = _check_optimize(self.optimize, allowed)
        params = None if wanted == "default" else wanted
        self.evidence_fit_ = None
        if self.method == "regression":
            targets = indicators - 1.0 / c  # centred one-hot (Lee et al. 2018)
            if wanted is not None:
                fit = maximize_evidence(net, x, targets, noise=noise, params=params, readout=readout,
                                        progress=self.progress)
                net, noise, self.evidence_fit_ = fit.network, fit.noise, fit
            self.model_ = fit_network(net, x, targets, noise=noise, readout=readout)
            self.log_marginal_likelihood_value_ = self.model_.log_marginal_likelihood
            self.n_iter_ = 1  # one linear solve
        else:
            if wanted is not None:
                fit = maximize_laplace_evidence(net, x, indicators, params=params, readout=readout,
                                                max_iter=self.max_iter, tol=tol, progress=self.progress)
                net, self.evidence_fit_ = fit.network, fit
            k = gram_matrix(net, x, readout)
            mode = laplace_mode_numpy(k, indicators, max_iter=self.max_iter, tol=tol)
            if not bool(mode.converged):
                warnings.warn(f"Laplace mode search did not converge in max_iter = {self.max_iter} Newton "
                              f"iterations; increase max_iter", ConvergenceWarning, stacklevel=2)
            self.f_mode_ = np.asarray(mode.f)
            self.log_marginal_likelihood_value_ = float(mode.log_marginal_likelihood)
            self.n_iter_ = int(mode.iterations)
            self.X_train_ = x
            self.predictor_ = laplace_predictor_numpy(k, indicators, mode.f)
        self.network_, self.noise_ = net, noise
        return self

    def _latent(self, X):
        readout = check_readout(self.readout)
        k_cross = np.asarray(network_kernel(self.network_, X, self.X_train_, readout))
        diag = kernel_diag(self.network_, X, readout)
        return laplace_latent_numpy(self.predictor_, k_cross, diag)

    def _is_laplace(self):
        return getattr(self, "method", None) == "laplace"

    def _is_regression(self):
        return getattr(self, "method", None) == "regression"

    @available_if(_is_laplace)
    def predict_proba(self, X):
        """Class probabilities E[softmax(f*)] under the Laplace latent posterior (GPML Alg. 3.4)."""
        check_is_fitted(self)
        X = self._x(_validate(self, X, reset=False, dtype=np.float64))
        out = []
        for i0 in range(0, X.shape[0], 512):
            mean, cov = self._latent(X[i0:i0 + 512])
            out.append(softmax_expectation(mean, cov, n_samples=self.n_samples, seed=int(self.random_state)))
        return np.concatenate(out) if out else np.empty((0, self.classes_.shape[0]))

    @available_if(_is_regression)
    def decision_function(self, X):
        """Posterior mean of the centred one-hot regression, (M, C) (binary: class 1 minus class 0)."""
        check_is_fitted(self)
        X = self._x(_validate(self, X, reset=False, dtype=np.float64))
        mean = self.model_.predict(X).mean
        return mean[:, 1] - mean[:, 0] if mean.shape[1] == 2 else mean

    def predict(self, X):
        """Most probable class (Laplace) or argmax of the one-hot regression mean."""
        check_is_fitted(self)
        if self.method == "laplace":
            return self.classes_[np.argmax(self.predict_proba(X), axis=1)]
        X = self._x(_validate(self, X, reset=False, dtype=np.float64))
        return self.classes_[np.argmax(self.model_.predict(X).mean, axis=1)]


__all__ = ["METHODS", "NNGPClassifier", "NNGPRegressor", "NetworkKernel", "input_scaling"]
