"""Deprecation helpers: a subpackage that can still be called like the function it used to shadow.

Formerly ``netfield.nlo`` and ``netfield.criticality`` were functions on the package that hid
their subpackages (``import netfield.nlo as m`` returned the function). They are now the subpackages;
:func:`make_module_callable` keeps ``netfield.nlo(net, x)`` and ``netfield.criticality("tanh", ...)``
working, with a DeprecationWarning naming the new function.
"""

from __future__ import annotations

import sys
import types
import warnings


def make_module_callable(module_name: str, function, *, old: str, new: str) -> None:
    """Make the (already imported) module ``module_name`` callable: a call warns and calls ``function``.

    Args:
        module_name: ``__name__`` of the module, e.g. ``"netfield.nlo"``.
        function: what a call of the module calls.
        old: the deprecated spelling, e.g. ``"netfield.nlo"``.
        new: the public name of ``function``, e.g. ``"netfield.one_loop"``.
    """

    class DeprecatedCallableModule(types.ModuleType):
        def __call__(self, *args, **kwargs):
            warnings.warn(f"calling {old}(...) is deprecated: {old} is a subpackage; call {new}(...) instead "
                          f"(the same function)", DeprecationWarning, stacklevel=2)
            return function(*args, **kwargs)

    sys.modules[module_name].__class__ = DeprecatedCallableModule


__all__ = ["make_module_callable"]
