"""The warning a numerical result gives when it could not reach its requested tolerance.

A computation that estimates its own error (replicates, an embedded rule) and was asked for a
tolerance it could not meet within its budget returns its best value with the achieved error and
warns with :class:`AccuracyWarning` (never a silent number; docs/accuracy.md).
"""

from __future__ import annotations


class AccuracyWarning(UserWarning):
    """A result's estimated error is above the requested tolerance (the message gives both and the lever)."""
