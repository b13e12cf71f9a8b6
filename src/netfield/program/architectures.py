"""Architectures as NETSOR+ programs: GRU, LSTM, transformer, convolutional nets, batch norm, and
any network a user writes with :class:`~netfield.program.builder.ProgramBuilder` (docs/theory.md 7).

A :class:`~netfield.program.network.Network` holds a *program writer* ``write(p, x, hp)`` that writes the network as a program
for concrete inputs ``x``; both interpreters (mean field, finite width) run the program it builds.
Every builder here is a few lines of program, and reduces to the DNN / RNN builders where it
should (GRU with both gates fixed open, LSTM with fixed gates and a linear cell output, a
convolution with a 1-wide filter on one position).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np

from .._checks import check_choice, check_finite_array, check_positive_int
from ..gauss import fastmath, get_activation
from .inputs import parse_inputs
from .netsor import GatedBlend, GatedCell, GatedOutput, GatedProduct, ProgramError
from .network import Network, make_network

Architecture = Network  # the former name of the network object of non-DNN/RNN builders


def architecture(fn: Callable, name: str | None = None, **hyper) -> Network:
    """A :class:`~netfield.program.network.Network` from a program function you write.

    ``fn(p, x)`` writes the network with :class:`~netfield.program.builder.ProgramBuilder` ``p`` for
    inputs ``x``. Pass hyper-parameters as keywords (``architecture(fn, weight_var=1.5)``) to make
    them pytree leaves: then ``fn(p, x, hp)`` reads them as ``hp.weight_var`` and ``jax.grad`` /
    ``net.replace`` work with respect to them.

    Example:
        >>> import numpy as np, netfield
        >>> def shared_mlp(p, x):
        ...     h = p.input("U", x, var=1.0) + p.bias("b", var=0.1)
        ...     for _ in range(3):   # one matrix W for all layers: weight sharing
        ...         h = p.matmul("W", p.nonlin("erf", h), var=1.5) + p.bias("b", var=0.1)
        ...     return p.readout(p.nonlin("erf", h))
        >>> arch = netfield.architecture(shared_mlp)
        >>> netfield.kernel(arch, np.eye(3)).shape
        (3, 3)
    """
    if not callable(fn):
        raise TypeError(f"fn must be a callable fn(p, x) writing a program, got {fn!r}")
    label = name or getattr(fn, "__name__", "program")
    write = _UserProgram(fn, bool(hyper))
    return make_network(label, write, _finite_inputs, {}, **hyper)


@dataclass(frozen=True)
class _UserProgram:
    fn: Callable
    takes_hyper: bool

    def __call__(self, p, data, hp):
        return self.fn(p, data, hp) if self.takes_hyper else self.fn(p, data)


def _finite_inputs(x, name: str = "x"):
    return check_finite_array(name, x)


# -- gates ----------------------------------------------------------------------------------------
def erf_sigmoid(u):
    """sig(u) = (1 + erf(u)) / 2 (GP4A's gate; products are Gaussian orthant probabilities)."""
    return 0.5 * (1.0 + fastmath.erf(u))


GATES = {"erf": erf_sigmoid, "logistic": lambda u: 1.0 / (1.0 + jnp.exp(-u))}


@dataclass(frozen=True)
class _SequenceInputs:
    """``prepare`` of the gated networks: the DNN / RNN input conventions (:func:`parse_inputs`)
    as (x of shape (N, T_in, d) zero-padded, lengths)."""

    steps: int

    def __call__(self, x, name: str = "x"):
        patterns = parse_inputs(x, self.steps, name)
        return patterns.x, patterns.lengths


def _gated_inputs(p, arr, t, names, input_var):
    """U_name x_t for each gate, or None after the inputs end (no input: structurally zero)."""
    if t > arr.shape[1]:
        return {k: None for k in names}
    return {k: p.input(f"U_{k}", arr[:, t - 1], input_var) for k in names}


def _affine(p, terms):
    total = None
    for t in terms:
        if t is not None:
            total = t if total is None else total + t
    return total


def _masked(update, mask_t):
    """State update frozen after a sequence ends: m * new + (1 - m) * old (m a fixed 0/1 per row)."""
    if mask_t is None:
        return update
    m = jnp.asarray(mask_t, jnp.float64)
    return lambda *a: m * update(*a[:-1]) + (1.0 - m) * a[-1]


def _state(p, formula, named, old, mask):
    """H-variable ``formula(dict of argument values)`` over the non-None named arguments; after a
    sequence ends (``mask`` False for its row) the state ``old`` is kept instead (masking)."""
    names = [k for k, v in named.items() if v is not None]
    args = [named[k] for k in names]

    def fn(*a):
        return formula(dict(zip(names, a)))

    if mask is None or old is None:
        return p.nonlin(fn, *args)
    return p.nonlin(_masked(fn, mask), *args, old, coupled=True)


def _tap_step(p, t, named):
    """Taps of a gated network at step t: hidden state "h", cell "c", gate pre-activations."""
    for family, v in named.items():
        if v is not None:
            p.tap(family, t, v)


def _last_outputs(p, outputs, lengths, steps):
    """Sequences shorter than ``steps`` are read out at their own last step."""
    if (lengths != steps).any():
        p.last([outputs[int(n) - 1] for n in lengths])


def _check_gates(fixed_gates, allowed):
    fixed = dict(fixed_gates or {})
    for k, v in fixed.items():
        if k not in allowed:
            raise ValueError(f"fixed_gates keys must be among {allowed}, got {k!r}")
        if not (isinstance(v, (int, float)) and 0.0 <= v <= 1.0):
            raise ValueError(f"fixed_gates[{k!r}] must be a number in [0, 1], got {v!r}")
    return fixed


def _options(**values) -> dict:
    return values


def _hyper(weight_var, bias_var, input_var, readout_var, readout_bias_var) -> dict:
    return {"weight_var": weight_var, "bias_var": bias_var, "input_var": input_var, "readout_var": readout_var,
            "readout_bias_var": readout_bias_var}


# -- GRU -------------------------------------------------------------------------------------------
def gru(steps: int, activation="erf", weight_var=1.0, bias_var=1.0, input_var=1.0, readout_var=1.0,
        readout_bias_var=0.0, *, gate="erf", fixed_gates=None) -> Network:
    """Gated recurrent unit (GP4A's conventions by default: erf gates and candidate, variances 1)::

        z_t = sig(W_z h_{t-1} + U_z x_t + b_z)          update gate
        r_t = sig(W_r h_{t-1} + U_r x_t + b_r)          reset gate
        h_t = (1 - z_t) h_{t-1} + z_t phi(W_h (r_t h_{t-1}) + U_h x_t + b_h),    h_0 = 0
        f   = V h_T + b_o

    ``fixed_gates={"update": 1, "reset": 1}`` replaces the gates by constants; with both open the
    GRU is the simple RNN ``netfield.rnn(steps, activation)``.
    """
    steps = check_positive_int("steps", steps)
    act = get_activation(activation)
    check_choice("gate", gate, tuple(GATES))
    fixed = _check_gates(fixed_gates, ("update", "reset"))
    sig = GATES[gate]

    def program(p, data, hp):
        arr, lengths = data
        p.space("rows", arr.shape[0])
        h, outputs = None, []
        zc, rc = fixed.get("update"), fixed.get("reset")
        for t in range(1, steps + 1):
            u = _gated_inputs(p, arr, t, ("z", "r", "h"), hp.input_var)
            mask = None if (lengths >= t).all() else (lengths >= t)
            gz = None if zc is not None else _affine(p, [None if h is None else p.matmul("W_z", h, hp.weight_var),
                                                          u["z"], p.bias("b_z", hp.bias_var)])
            if h is None:
                gh = _affine(p, [u["h"], p.bias("b_h", hp.bias_var)])
            else:
                if rc is None:
                    gr = _affine(p, [p.matmul("W_r", h, hp.weight_var), u["r"], p.bias("b_r", hp.bias_var)])
                    rh = p.nonlin(GatedProduct(sig), gr, h)
                else:
                    rh = h if rc == 1 else p.nonlin(lambda hh, c=rc: c * hh, h)
                gh = _affine(p, [p.matmul("W_h", rh, hp.weight_var), u["h"], p.bias("b_h", hp.bias_var)])

            def update(d, h_old=h):  # h_t = (1 - z) h_{t-1} + z phi(gh), h_0 = 0
                z = sig(d["z"]) if "z" in d else zc
                new = z * act.fn(d["gh"])
                return new if h_old is None else new + (1.0 - z) * d["h"]

            if zc == 1 and mask is None:
                h = p.nonlin(act, gh)  # gate fixed open: the simple RNN's state phi(gh)
            elif zc is None and mask is None:  # h_t = (1 - z) h_{t-1} + z phi(gh): a gated recurrence
                h = p.nonlin(GatedBlend(sig, act), gz, gh, *(() if h is None else (h,)))
            else:
                keep = h is not None and zc != 1
                h = _state(p, update, {"z": gz, "gh": gh, "h": h if keep else None}, h, mask)
            _tap_step(p, t, {"h": h, "z": gz, "candidate": gh})
            outputs.append(p.readout(h, hp.readout_var, hp.readout_bias_var))
        _last_outputs(p, outputs, lengths, steps)

    opts = _options(steps=steps, activation=act, gate=gate, fixed_gates=fixed)
    hyper = _hyper(weight_var, bias_var, input_var, readout_var, readout_bias_var)
    return make_network("gru", program, _SequenceInputs(steps), opts, gru, **hyper)


# -- LSTM ------------------------------------------------------------------------------------------
def lstm(steps: int, activation="tanh", weight_var=1.0, bias_var=1.0, input_var=1.0, readout_var=1.0,
         readout_bias_var=0.0, *, gate="erf", cell_activation=None, fixed_gates=None) -> Network:
    """Long short-term memory network::

        i_t, f_t, o_t = sig(W_{i,f,o} h_{t-1} + U_{i,f,o} x_t + b_{i,f,o})      gates
        c_t = f_t c_{t-1} + i_t phi(W_g h_{t-1} + U_g x_t + b_g),   c_0 = 0
        h_t = o_t psi(c_t)         psi = cell_activation (default: phi),   h_0 = 0
        f   = V h_T + b_o

    With ``fixed_gates={"input": 1, "forget": 0, "output": 1}`` and ``cell_activation="linear"`` it
    is the simple RNN ``netfield.rnn(steps, activation)``.
    """
    steps = check_positive_int("steps", steps)
    act = get_activation(activation)
    cell = act if cell_activation is None else get_activation(cell_activation)
    check_choice("gate", gate, tuple(GATES))
    fixed = _check_gates(fixed_gates, ("input", "forget", "output"))
    sig = GATES[gate]

    def program(p, data, hp):
        arr, lengths = data
        p.space("rows", arr.shape[0])
        h = c = None
        outputs = []
        ci, cf, co = fixed.get("input"), fixed.get("forget"), fixed.get("output")
        for t in range(1, steps + 1):
            u = _gated_inputs(p, arr, t, ("i", "f", "o", "g"), hp.input_var)
            pre = {}
            for k, fix in (("i", ci), ("f", cf), ("o", co), ("g", None)):
                if fix is None and not (k == "f" and c is None):
                    rec = None if h is None else p.matmul(f"W_{k}", h, hp.weight_var)
                    pre[k] = _affine(p, [rec, u[k], p.bias(f"b_{k}", hp.bias_var)])
            mask = None if (lengths >= t).all() else (lengths >= t)

            def cell_update(d, c_old=c):  # c_t = f c_{t-1} + i phi(g)
                new = (sig(d["i"]) if "i" in d else ci) * act.fn(d["g"])
                if c_old is not None and cf != 0:
                    new = new + (sig(d["f"]) if "f" in d else cf) * d["c"]
                return new

            if ci == 1 and (c is None or cf == 0) and mask is None:
                c = p.nonlin(act, pre["g"])
            elif ci is None and cf is None and mask is None:  # c_t = f c_{t-1} + i phi(g): a gated recurrence
                c = p.nonlin(GatedCell(sig, act), pre["i"], pre["g"], *(() if c is None else (pre["f"], c)))
            else:
                keep = c is not None and cf != 0
                c = _state(p, cell_update, {"i": pre.get("i"), "f": pre.get("f"), "g": pre["g"],
                                            "c": c if keep else None}, c, mask)
            if co == 1 and cell.name == "linear":
                h = c  # h_t = c_t
            elif co is None and mask is None:
                h = p.nonlin(GatedOutput(sig, cell), pre["o"], c)
            else:
                h_mask = mask if co is None else None  # a fixed output gate keeps a frozen cell frozen
                h = _state(p, lambda d: (sig(d["o"]) if "o" in d else co) * cell.fn(d["c"]),
                           {"o": pre.get("o"), "c": c}, h, h_mask)
            _tap_step(p, t, {"h": h, "c": c, "i": pre.get("i"), "f": pre.get("f"), "o": pre.get("o"),
                             "candidate": pre["g"]})
            outputs.append(p.readout(h, hp.readout_var, hp.readout_bias_var))
        _last_outputs(p, outputs, lengths, steps)

    opts = _options(steps=steps, activation=act, cell_activation=cell, gate=gate, fixed_gates=fixed)
    hyper = _hyper(weight_var, bias_var, input_var, readout_var, readout_bias_var)
    return make_network("lstm", program, _SequenceInputs(steps), opts, lstm, **hyper)


# -- transformer -------------------------------------------------------------------------------------
def _token_inputs(x, name: str = "x"):
    arr = check_finite_array(name, x)
    if arr.ndim != 3 or min(arr.shape) < 1:
        raise ValueError(f"{name} must have shape (N, L, d): N sequences of L tokens, got {arr.shape}")
    return arr


def transformer(blocks: int = 1, activation="relu", weight_var=1.0, bias_var=0.0, input_var=1.0,
                readout_var=1.0, readout_bias_var=0.0, *, attention_scale=1.0, tie_query_key=False,
                causal=False, readout="mean") -> Network:
    """Transformer encoder: ``blocks`` x (attention with 1/n logits, residual, layer norm, MLP)::

        g_0 = U x_token + b                                     rows: (sequence, token)
        a   = Attention(q = W_q g, k = W_k g, v = W_v g)        logits scale * q_i . k_j / n
        g'  = LN(g + a),   g_next = LN(g' + W_2 phi(W_1 g' + b_1) + b_2)
        f   = V mean_tokens(g_B)  (readout="mean")  or  V g_B(last token)  (readout="last")

    At infinite width the logits are Cov(q_i, k_j): zero for independent W_q, W_k (uniform
    attention), Cov(q_i, q_j) with ``tie_query_key=True`` (k = q).
    """
    blocks = check_positive_int("blocks", blocks)
    act = get_activation(activation)
    check_choice("readout", readout, ("mean", "last"))
    if not np.isfinite(attention_scale):
        raise ValueError(f"attention_scale must be a finite number, got {attention_scale!r}")

    def program(p, arr, hp):
        N, L, d = arr.shape
        rows = arr.reshape(N * L, d)
        same = np.kron(np.eye(N, dtype=bool), np.ones((L, L), bool))
        mask = same & np.kron(np.ones((N, N), bool), np.tril(np.ones((L, L), bool))) if causal else same
        g = p.input("U", rows, hp.input_var, space="tokens") + p.bias("b0", hp.bias_var, space="tokens")
        for b in range(1, blocks + 1):
            s = p.nonlin("linear", g)
            q = p.matmul(f"Wq{b}", s, hp.weight_var)
            k = q if tie_query_key else p.matmul(f"Wk{b}", s, hp.weight_var)
            v = p.matmul(f"Wv{b}", s, hp.weight_var)
            g1 = p.layernorm(g + p.attention(q, k, v, mask=mask, scale=attention_scale))
            m = p.matmul(f"W1_{b}", p.nonlin("linear", g1), hp.weight_var) + p.bias(f"b1_{b}", hp.bias_var, space="tokens")
            m = p.matmul(f"W2_{b}", p.nonlin(act, m), hp.weight_var) + p.bias(f"b2_{b}", hp.bias_var, space="tokens")
            g = p.layernorm(g1 + m)
            p.tap("h", b, g)
        pool = np.kron(np.eye(N), np.full((1, L), 1.0 / L)) if readout == "mean" \
            else np.kron(np.eye(N), np.eye(L)[-1:])
        return p.readout(p.rowmap(p.nonlin("linear", g), pool, space="rows"), hp.readout_var, hp.readout_bias_var)

    opts = _options(blocks=blocks, activation=act,
                attention_scale=attention_scale, tie_query_key=tie_query_key, causal=causal, readout=readout)
    hyper = _hyper(weight_var, bias_var, input_var, readout_var, readout_bias_var)
    return make_network("transformer", program, _token_inputs, opts, transformer, **hyper)


attention = transformer  # the name for the transformer-block builder: netfield.attention(...)


# -- convolution ---------------------------------------------------------------------------------------
def _shift_matrices(spatial, filter_shape, padding):
    """Per filter offset, the (P_out, P_in) 0/1 matrix picking input position q + o - pad."""
    if padding == "SAME":
        out_shape = spatial
        pads = [(f - 1) // 2 for f in filter_shape]
    else:
        out_shape = tuple(s - f + 1 for s, f in zip(spatial, filter_shape))
        pads = [0] * len(spatial)
        if min(out_shape) < 1:
            raise ValueError(f"filter_shape {filter_shape} is larger than the input {spatial} (padding VALID)")
    P_in, P_out = int(np.prod(spatial)), int(np.prod(out_shape))
    mats = []
    for off in itertools.product(*[range(f) for f in filter_shape]):
        S = np.zeros((P_out, P_in))
        for q_idx, q in enumerate(itertools.product(*[range(s) for s in out_shape])):
            src = [qi + oi - pi for qi, oi, pi in zip(q, off, pads)]
            if all(0 <= s < n for s, n in zip(src, spatial)):
                S[q_idx, np.ravel_multi_index(src, spatial)] = 1.0
        mats.append(S)
    return mats, out_shape


def _positions(shape) -> str:
    """Row-space name of the feature maps of one spatial shape (same shape = same rows)."""
    return "positions" + "x".join(str(s) for s in shape)


def _pool_matrix(spatial, window):
    out_shape = tuple(s // w for s, w in zip(spatial, window))
    if min(out_shape) < 1:
        raise ValueError(f"pool_window {window} is larger than the feature map {spatial}")
    A = np.zeros((int(np.prod(out_shape)), int(np.prod(spatial))))
    for q_idx, q in enumerate(itertools.product(*[range(s) for s in out_shape])):
        for off in itertools.product(*[range(w) for w in window]):
            src = [qi * w + oi for qi, w, oi in zip(q, window, off)]
            A[q_idx, np.ravel_multi_index(src, spatial)] = 1.0 / np.prod(window)
    return A, out_shape


def conv(depth: int, activation="relu", weight_var=1.0, bias_var=0.0, input_var=1.0, readout_var=1.0,
         readout_bias_var=0.0, *, filter_shape=(3, 3), padding="SAME", pool_window=None, readout="global_avg",
         skip=False) -> Network:
    """Convolutional network on images x of shape (N, *spatial, C) (1-D or 2-D, channels last)::

        g_1 = Conv_U(x) + b_1,    g_l = Conv_{W_l}(P(phi(g_{l-1}))) + b_l      (skip: g_{l-1} + Conv(phi(g_{l-1})) + b_l)
        f   = V R(phi(g_depth)) + b_o

    Conv_W(h)(q) = sum_o W_o h(q + o) over the filter offsets o (one n x n matrix per offset, entries
    N(0, var / (n * filter size)); zero padding for "SAME"), P an optional average pooling with
    window = stride = ``pool_window`` before each conv layer after the first, R the readout: mean over
    positions (``"global_avg"``) or all positions at once (``"flatten"``). The same conventions as
    neural-tangents' ``stax.Conv`` / ``AvgPool`` / ``GlobalAvgPool`` / ``Flatten`` NNGP kernels.
    """
    depth = check_positive_int("depth", depth)
    act = get_activation(activation)
    check_choice("padding", padding, ("SAME", "VALID"))
    check_choice("readout", readout, ("global_avg", "flatten"))
    filter_shape = tuple(int(f) for f in np.atleast_1d(filter_shape))
    if min(filter_shape) < 1:
        raise ValueError(f"filter_shape must hold positive integers, got {filter_shape}")
    window = None if pool_window is None else tuple(int(w) for w in np.atleast_1d(pool_window))
    if skip and (padding != "SAME" or window is not None):
        raise ValueError(f"skip=True needs padding='SAME' and no pool_window (the residual must keep the shape), "
                         f"got padding={padding!r}, pool_window={window!r}")

    def prepare(x, name="x"):
        arr = check_finite_array(name, x)
        if arr.ndim not in (3, 4) or len(filter_shape) != arr.ndim - 2:
            raise ValueError(
                f"{name} must have shape (N, *spatial, C) with {len(filter_shape)} spatial dimension(s) to match "
                f"filter_shape {filter_shape}, got {arr.shape}"
            )
        if window is not None and len(window) != len(filter_shape):
            raise ValueError(f"pool_window {window} must have {len(filter_shape)} entries")
        return arr

    def program(p, arr, hp):
        N, spatial, C = arr.shape[0], arr.shape[1:-1], arr.shape[-1]
        k = int(np.prod(filter_shape))
        feats = arr.reshape(N, -1, C)
        shifts, shape = _shift_matrices(spatial, filter_shape, padding)
        space = p.space(_positions(shape), N * int(np.prod(shape)))
        per = [np.einsum("qp,npc->nqc", S, feats).reshape(-1, C) for S in shifts]
        g = _affine(p, [p.input(f"U_{o}", f, hp.input_var / k, space=space) for o, f in enumerate(per)]
                    + [p.bias("b1", hp.bias_var, space=space)])
        p.tap("h", 1, g)
        for layer in range(2, depth + 1):
            h = p.nonlin(act, g)
            if window is not None:
                A, shape2 = _pool_matrix(shape, window)
                h = p.rowmap(h, np.kron(np.eye(N), A), space=_positions(shape2))
                shape = shape2
            shifts, out = _shift_matrices(shape, filter_shape, padding)
            space = p.space(_positions(out), N * int(np.prod(out)))
            terms = [p.matmul(f"W{layer}_{o}", p.rowmap(h, np.kron(np.eye(N), S), space=space), hp.weight_var / k)
                     for o, S in enumerate(shifts)]
            new = _affine(p, terms + [p.bias(f"b{layer}", hp.bias_var, space=space)])
            g = g + new if skip else new
            shape = out
            p.tap("h", layer, g)
        h = p.nonlin(act, g)
        P = int(np.prod(shape))
        if readout == "global_avg":
            h = p.rowmap(h, np.kron(np.eye(N), np.full((1, P), 1.0 / P)), space="rows")
            return p.readout(h, hp.readout_var, hp.readout_bias_var)
        return p.readout(h, hp.readout_var, hp.readout_bias_var, flatten=np.arange(N * P).reshape(N, P))

    opts = _options(depth=depth, activation=act, filter_shape=filter_shape,
                padding=padding, pool_window=window, readout=readout, skip=skip)
    hyper = _hyper(weight_var, bias_var, input_var, readout_var, readout_bias_var)
    return make_network("conv", program, prepare, opts, conv, **hyper)


# -- batch norm --------------------------------------------------------------------------------------
def batchnorm_mlp(depth: int, activation="relu", weight_var=1.0, bias_var=0.0, input_var=1.0, readout_var=1.0,
                  readout_bias_var=0.0, *, eps=0.0) -> Network:
    """MLP with batch norm before every activation (GP4A's batchnorm + ReLU network)::

        g_1 = U x + b_1,   h_l = phi(BN(g_l)),   g_{l+1} = W_{l+1} h_l + b_{l+1},   f = V h_depth + b_o
        BN(g)(a) = (g(a) - mean_batch g) / sqrt(var_batch g + eps)     per coordinate, over the batch

    The batch is the set of patterns x given (batch-coupled: the kernel of a pattern depends on the
    other patterns of the batch). For a cross kernel ``netfield.kernel(net, x1, x2, batch=...)`` says
    which batch: ``"joint"`` (default) - x1 and x2 form one batch, as if the network saw them
    together; ``"x1"`` - x1 is the (training) batch and every pattern, x2's included, is normalised
    with x1's statistics (inference with the training batch's statistics); then K(x1, x1) does not
    depend on x2.
    """
    depth = check_positive_int("depth", depth)
    act = get_activation(activation)
    if not (np.isfinite(eps) and eps >= 0):
        raise ValueError(f"eps must be a finite number >= 0, got {eps!r}")

    def normaliser(rows):
        stat = slice(None) if rows is None else slice(0, rows)

        def bn_act(g):
            centred = g - g[..., stat].mean(axis=-1, keepdims=True)
            return act.fn(centred / jnp.sqrt((centred[..., stat] ** 2).mean(axis=-1, keepdims=True) + eps))

        return bn_act

    def prepare(x, name="x"):
        arr = check_finite_array(name, x)
        if arr.ndim != 2 or arr.shape[0] < 2:
            raise ValueError(f"{name} must have shape (N, d) with a batch of N >= 2 patterns, got {arr.shape}")
        return arr

    def program(p, arr, hp):
        bn_act = normaliser(p.batch_rows)
        batch = arr if p.batch_rows is None else arr[:p.batch_rows]
        if eps == 0 and (batch == batch[:1]).all():
            name = "x" if p.batch_rows is None else "x1 (the batch, batch='x1')"
            raise ValueError(f"{name} must hold at least two different patterns for batch norm with eps = 0 (the "
                             f"batch variance of identical patterns is zero), got {batch.shape[0]} copies of one "
                             f"pattern; pass different patterns or eps > 0")
        free = p.batch_rows is None and eps == 0  # depends on the direction of the centred rows only
        g = p.tap("h", 1, p.input("U", arr, hp.input_var) + p.bias("b1", hp.bias_var))
        for layer in range(2, depth + 1):
            h = p.nonlin(bn_act, g, coupled=True, scale_free=free)
            g = p.matmul(f"W{layer}", h, hp.weight_var) + p.bias(f"b{layer}", hp.bias_var)
            p.tap("h", layer, g)
        return p.readout(p.nonlin(bn_act, g, coupled=True, scale_free=free), hp.readout_var, hp.readout_bias_var)

    opts = _options(depth=depth, activation=act, eps=eps)
    hyper = _hyper(weight_var, bias_var, input_var, readout_var, readout_bias_var)
    return make_network("batchnorm_mlp", program, prepare, opts, batchnorm_mlp, **hyper)


__all__ = ["Architecture", "ProgramError", "architecture", "attention", "batchnorm_mlp", "conv", "erf_sigmoid", "gru", "lstm",
           "transformer"]
