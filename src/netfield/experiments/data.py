"""Inputs for the experiments: real data that ships with scikit-learn, and input files.

The demo and the command line never download anything: their default inputs are images from
scikit-learn's bundled handwritten-digits dataset (``sklearn.datasets.load_digits``, 1797 images of
8 x 8 pixels), standardised per pixel over the whole dataset.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._checks import check_finite_array, check_positive_int

INPUT_SUFFIXES = (".npy", ".npz", ".csv")


def is_numeric(cells) -> bool:
    """Every cell parses as a float."""
    try:
        [float(c) for c in cells]
    except ValueError:
        return False
    return True


def csv_rows(path, header_columns=slice(None)) -> list:
    """The non-blank rows of a comma-separated file as lists of strings, without a header: a first row
    whose ``header_columns`` are not all numeric (the inputs' loader and ``netfield gp --data`` alike)."""
    import csv

    with open(path, newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.reader(fh) if r and any(c.strip() for c in r)]
    if rows and not is_numeric(rows[0][header_columns]):
        rows = rows[1:]
    return rows


def _csv_floats(path) -> np.ndarray:
    rows = csv_rows(path)
    if not rows:
        raise ValueError("no data rows")
    for i, r in enumerate(rows):
        if len(r) != len(rows[0]) or not is_numeric(r):
            raise ValueError(f"data row {i + 1} must hold {len(rows[0])} numbers, got {r!r}")
    return np.array([[float(c) for c in r] for r in rows])


@dataclass(frozen=True, eq=False)
class DigitsInputs:
    """Standardised digit images.

    Attributes:
        x: (count, 64) float64, each pixel standardised over the dataset (constant pixels are 0).
        labels: (count,) digit classes.
        indices: (count,) positions in ``load_digits()``.
    """

    x: np.ndarray
    labels: np.ndarray
    indices: np.ndarray


def digits_inputs(count: int = 8) -> DigitsInputs:
    """``count`` digit images, cycling through the classes 0, 1, ..., 9, 0, ... (first occurrences).

    Example:
        >>> d = digits_inputs(4)
        >>> d.x.shape, d.labels.tolist()
        ((4, 64), [0, 1, 2, 3])
    """
    count = check_positive_int("count", count)
    from sklearn.datasets import load_digits

    data = load_digits()
    images, target = np.asarray(data.data, float), np.asarray(data.target)
    if count > len(target):
        raise ValueError(f"count must be at most {len(target)} (digits dataset size), got {count}")
    mean, std = images.mean(axis=0), images.std(axis=0)
    z = (images - mean) / np.where(std > 0, std, 1.0)
    taken: list[int] = []
    occurrence = 0
    while len(taken) < count:
        for c in range(10):
            hits = np.flatnonzero(target == c)
            if occurrence < len(hits) and len(taken) < count:
                taken.append(int(hits[occurrence]))
        occurrence += 1
    idx = np.array(taken)
    return DigitsInputs(x=z[idx], labels=target[idx], indices=idx)


def load_inputs(path, key: str | None = None) -> np.ndarray:
    """Read network inputs from ``.npy``, ``.npz`` (array ``key``, or its only array) or ``.csv``.

    Args:
        path: file name.
        key: array name inside an ``.npz`` with several arrays.

    Returns:
        float64 array of shape (N, d) or (N, T, d) (CSV: (N, d), comma separated; a first line that is
        not numeric is a header, as for ``netfield gp --data``).

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: unknown suffix, unreadable file, wrong shape, NaN or infinite entries.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"input file {str(p)!r} does not exist")
    suffix = p.suffix.lower()
    if suffix not in INPUT_SUFFIXES:
        raise ValueError(f"input file {str(p)!r} must end in {', '.join(INPUT_SUFFIXES)}, got {suffix or 'no suffix'!r}")
    try:
        if suffix == ".npy":
            arr = np.load(p, allow_pickle=False)
        elif suffix == ".npz":
            with np.load(p, allow_pickle=False) as data:
                names = list(data.files)
                if key is None:
                    if len(names) != 1:
                        raise ValueError(f"input file {str(p)!r} holds arrays {names}; choose one with --key")
                    key = names[0]
                if key not in names:
                    raise ValueError(f"input file {str(p)!r} has no array {key!r}; it holds {names}")
                arr = data[key]
        else:
            arr = _csv_floats(p)
    except ValueError as err:
        if "holds arrays" in str(err) or "has no array" in str(err):
            raise
        raise ValueError(f"could not read input file {str(p)!r}: {str(err).splitlines()[0]}") from None
    except (OSError, EOFError) as err:
        raise ValueError(f"could not read input file {str(p)!r}: {err}") from None
    arr = check_finite_array(f"inputs in {str(p)!r}", arr)
    if arr.ndim not in (2, 3) or min(arr.shape) < 1:
        raise ValueError(
            f"inputs in {str(p)!r} must have shape (N, d) or (N, T, d) with N, T, d >= 1, got shape {arr.shape}"
        )
    return arr
