"""Results that can be kept: one portable file format for every result type (README "Keeping results").

A result file is a NumPy ``.npz`` archive (no pickle: arrays only, read with ``allow_pickle=False``):
every array of the result is one entry, and the entry ``__netfield__`` holds a JSON document with

- ``format`` / ``format_version``: ``"netfield-result"`` and the version of this layout (:data:`FORMAT_VERSION`);
- ``type``: the result's class name (e.g. ``"Ensemble"``); ``netfield_version``: the version that wrote it;
- ``network``: the network description (:func:`describe_network`): its name, ``repr``, options and
  hyper-parameters; on load the network is built again by its builder (``netfield.<name>(**options,
  **hyper)``) when the options are plain values (activations by name);
- ``fields``: the result's other values (numbers, strings, tuples, dicts; arrays by reference to
  their entry). Floats are written with ``repr`` (exact); numpy scalars are stored as 0-d arrays, so
  dtypes survive the round trip.

Result classes inherit :class:`Storable` (``result.save(path)``, ``ResultType.load(path)``); a dataclass
needs nothing else. ``netfield.load(path)`` loads any result by the type recorded in the file.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import os
import zipfile
from pathlib import Path

import numpy as np

from ._version import __version__
from .gauss import Activation, get_activation
from .program import Network
from .program import architectures as _architectures
from .program import network as _network

FORMAT = "netfield-result"
FORMAT_VERSION = 1
META = "__netfield__"
_PLAIN = (bool, int, str, type(None))


class StorageError(ValueError):
    """A result file that cannot be read (the message names the path and what is wrong)."""


# -- the network ---------------------------------------------------------------------------------------
def _builders() -> dict:
    """{network name: builder} of the builders whose networks can be rebuilt from plain options."""
    names = ("dnn", "rnn", "gru", "lstm", "transformer", "conv", "batchnorm_mlp", "attention")
    modules = (_network, _architectures)
    return {n: getattr(m, n) for n in names for m in modules if callable(getattr(m, n, None))}


def _plain(value) -> bool:
    if isinstance(value, (tuple, list)):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return isinstance(value, (*_PLAIN, float)) and not isinstance(value, np.generic)


def describe_network(net: Network) -> dict:
    """JSON-ready description of ``net``: name, repr, options, hyper-parameters, and whether the
    builder ``netfield.<name>(**options, **hyper)`` can build it again (``rebuildable``)."""
    options, rebuildable = {}, net.builder is not None and net.name in _builders()
    for key, value in net.options:
        if isinstance(value, Activation):  # by name where the name gives the same activation back
            try:
                same = get_activation(value.name) == value
            except (ValueError, TypeError):
                same = False
            options[key] = value.name
            rebuildable &= bool(same)
        elif _plain(value):
            options[key] = _encode(value, {}, f"option {key}")
        else:
            options[key] = repr(value)
            rebuildable = False
    hyper = {}
    for key, value in net.hyper_parameters.items():
        try:
            hyper[key] = float(value)
        except TypeError:
            raise TypeError(f"the network's hyper-parameter {key} must be a number to be saved, got "
                            f"{type(value).__name__} (a traced value inside jax.grad?)") from None
    return {"name": net.name, "repr": repr(net), "options": options, "hyper": hyper, "rebuildable": rebuildable}


def rebuild_network(description: dict | None) -> Network | None:
    """The network of a description (:func:`describe_network`), or None where it cannot be rebuilt
    (a custom activation or a program written with :func:`netfield.architecture`)."""
    if not description or not description.get("rebuildable"):
        return None
    builder = _builders().get(description.get("name"))
    try:
        options = {k: _decode(v, {}, {}) for k, v in description["options"].items()}
        net = builder(**options, **description["hyper"])
    except (TypeError, ValueError, KeyError, StorageError):  # e.g. a builder whose options changed since
        return None
    return net if repr(net) == description["repr"] else None


# -- values <-> JSON + arrays --------------------------------------------------------------------------
def _encode(value, arrays: dict, where: str):
    if isinstance(value, Network):
        return {"__network__": describe_network(value)}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {"__dataclass__": type(value).__name__,
                "fields": {f.name: _encode(getattr(value, f.name), arrays, f"{where}.{f.name}")
                           for f in dataclasses.fields(value)}}
    if isinstance(value, np.generic) or hasattr(value, "__array__") and not isinstance(value, _PLAIN):
        arr = np.asarray(value)
        if arr.dtype.hasobject:
            raise TypeError(f"{where} must hold numbers to be saved, got an array of dtype object")
        key = f"a{len(arrays)}"
        arrays[key] = arr
        return {"__array__": key, "scalar": isinstance(value, np.generic)}
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {"__float__": repr(value)}
    if isinstance(value, complex):
        return {"__complex__": [_encode(value.real, arrays, where), _encode(value.imag, arrays, where)]}
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v, arrays, f"{where}[{i}]") for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [_encode(v, arrays, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        return {"__dict__": [[_encode(k, arrays, f"{where} key"), _encode(v, arrays, f"{where}[{k!r}]")]
                             for k, v in value.items()]}
    raise TypeError(f"{where} cannot be saved: {type(value).__name__} is not a number, string, array, "
                    f"tuple, list, dict, dataclass or network")


def _decode(value, arrays, types: dict):
    if isinstance(value, list):
        return [_decode(v, arrays, types) for v in value]
    if not isinstance(value, dict):
        return value
    if "__array__" in value:
        arr = arrays[value["__array__"]]
        return arr[()] if value.get("scalar") else arr
    if "__float__" in value:
        return float(value["__float__"])
    if "__complex__" in value:
        return complex(*(_decode(v, arrays, types) for v in value["__complex__"]))
    if "__tuple__" in value:
        return tuple(_decode(v, arrays, types) for v in value["__tuple__"])
    if "__dict__" in value:
        return {_hashable(_decode(k, arrays, types)): _decode(v, arrays, types) for k, v in value["__dict__"]}
    if "__network__" in value:
        return rebuild_network(value["__network__"])
    if "__dataclass__" in value:
        cls = types.get(value["__dataclass__"])
        if cls is None:
            raise StorageError(f"the file holds a {value['__dataclass__']}, which this result type does not "
                               f"contain (known: {', '.join(sorted(types)) or 'none'})")
        return cls(**{k: _decode(v, arrays, types) for k, v in value["fields"].items()})
    raise StorageError(f"unknown entry {sorted(value)} in the metadata")


def _hashable(key):
    return tuple(_hashable(k) for k in key) if isinstance(key, list) else key


# -- files ---------------------------------------------------------------------------------------------
def write(path, type_name: str, fields: dict, *, network: Network | None = None, extra: dict | None = None) -> Path:
    """Write ``fields`` ({name: value}) as a result of type ``type_name`` to ``path`` (.npz added if missing)."""
    path = Path(os.fspath(path))
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    arrays: dict = {}
    encoded = {name: _encode(value, arrays, name) for name, value in fields.items()}
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "type": type_name, "netfield_version": __version__,
            "network": None if network is None else describe_network(network), "fields": encoded,
            "extra": extra or {}}
    text = json.dumps(meta, allow_nan=False)
    _check_writable(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    np.savez(buffer, **{META: np.array(text)}, **arrays)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(buffer.getvalue())
    tmp.replace(path)  # a complete file or none
    return path


def _check_writable(path: Path):
    """A result file can be written at ``path``: not a folder, and no file where a folder must be."""
    if path.is_dir():
        raise StorageError(f"path {str(path)!r} is a folder; give a file name such as {str(path / 'result.npz')!r}")
    for folder in path.parents:  # the nearest existing ancestor must be a folder
        if folder.exists():
            if not folder.is_dir():
                raise StorageError(f"path {str(path)!r}: {str(folder)!r} is a file, not a folder")
            break


def read_metadata(path) -> dict:
    """The JSON metadata of a result file (format, type, netfield version, network description, fields)."""
    return _read(path)[0]


def _read(path):
    path = Path(os.fspath(path))
    if not path.is_file():
        raise FileNotFoundError(f"path {str(path)!r}: no such result file")
    if not zipfile.is_zipfile(path):
        raise StorageError(f"path {str(path)!r} is not a netfield result file (not a .npz archive; result "
                           f"files are written by result.save(path))")
    try:
        with np.load(path, allow_pickle=False) as data:
            if META not in data.files:
                raise StorageError(f"path {str(path)!r} is a .npz file but not a netfield result (it has no "
                                   f"{META} entry; entries: {', '.join(data.files[:8])})")
            meta = json.loads(str(data[META]))
            arrays = {k: data[k] for k in data.files if k != META}
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        if isinstance(err, FileNotFoundError):
            raise
        raise StorageError(f"path {str(path)!r} is not a netfield result file (.npz written by result.save): "
                           f"{err}") from None
    except (ValueError, json.JSONDecodeError) as err:
        if isinstance(err, StorageError):
            raise
        raise StorageError(f"path {str(path)!r}: unreadable netfield result ({err})") from None
    if meta.get("format") != FORMAT:
        raise StorageError(f"path {str(path)!r}: format must be {FORMAT!r}, got {meta.get('format')!r}")
    version = meta.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise StorageError(f"path {str(path)!r} has format version {version!r} (written by netfield "
                           f"{meta.get('netfield_version')}); this netfield {__version__} reads format versions "
                           f"<= {FORMAT_VERSION}: upgrade netfield")
    return meta, arrays


def read(path, type_names, types: dict | None = None):
    """(fields, metadata, network) of a result file whose type is one of ``type_names``."""
    meta, arrays = _read(path)
    names = (type_names,) if isinstance(type_names, str) else tuple(type_names)
    if meta.get("type") not in names:
        raise StorageError(f"path {str(path)!r} holds a {meta.get('type')}, not a {' or '.join(names)}; "
                           f"load it with netfield.load(path)")
    fields = {k: _decode(v, arrays, types or {}) for k, v in meta["fields"].items()}
    return fields, meta, rebuild_network(meta.get("network"))


class Storable:
    """Mixin: ``result.save(path)`` and ``ResultType.load(path)`` for a dataclass (module docstring).

    Class attributes: ``_storage_types``, the dataclasses nested in the result (allowed on load);
    ``_storage_network``, the name of the field (or a dotted path) that holds the network, if any.
    """

    _storage_types: tuple = ()
    _storage_network: str | None = None

    def _network(self):
        obj = self
        for part in (self._storage_network or "").split(".") if self._storage_network else ():
            obj = getattr(obj, part, None)
        return obj if isinstance(obj, Network) else None

    def save(self, path, *, network: Network | None = None) -> Path:
        """Write this result to ``path`` (a portable .npz, module docstring; ``.npz`` is appended to a
        path without it); ``network``: the network it was computed for, recorded with it (default: the
        one the result holds, if any). Returns the path written."""
        if network is not None and not isinstance(network, Network):
            raise TypeError(f"network must be a netfield Network or None, got {type(network).__name__}")
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return write(path, type(self).__name__, fields, network=network or self._network())

    @classmethod
    def load(cls, path):
        """The result saved at ``path`` by :meth:`save` (exact: same arrays, dtypes and values)."""
        types = {t.__name__: t for t in cls._storage_types}
        fields, _, _ = read(path, cls.__name__, types)
        return cls(**fields)


__all__ = ["FORMAT_VERSION", "Storable", "StorageError", "describe_network", "read", "read_metadata",
           "rebuild_network", "write"]
