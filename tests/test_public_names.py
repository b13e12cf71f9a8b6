"""Top-level names: the subpackages netfield.nlo / netfield.criticality are not shadowed by functions;
their functions are netfield.one_loop / netfield.mean_field_criticality; the old calls still work with a
DeprecationWarning naming the new function."""

import importlib
import sys
import types
import warnings

import numpy as np
import pytest

import netfield


@pytest.mark.parametrize("name", ["nlo", "criticality"])
def test_subpackages_are_modules_not_functions(name):
    import_as = importlib.import_module(f"netfield.{name}")
    assert isinstance(import_as, types.ModuleType)
    assert getattr(netfield, name) is import_as is sys.modules[f"netfield.{name}"]
    assert import_as.__name__ == f"netfield.{name}" and hasattr(import_as, "__path__")


def test_import_as_statement_gives_the_subpackages():
    import netfield.criticality as c
    import netfield.nlo as m

    assert m.simulate is netfield.nlo.simulate and c.critical_line is netfield.criticality.critical_line


def test_new_names():
    from netfield.criticality import criticality, mean_field_criticality
    from netfield.nlo import nlo, one_loop

    assert netfield.one_loop is one_loop is nlo and one_loop.__name__ == "one_loop"
    assert netfield.mean_field_criticality is mean_field_criticality is criticality
    assert mean_field_criticality.__name__ == "mean_field_criticality"
    assert {"one_loop", "mean_field_criticality", "nlo", "criticality"} <= set(netfield.__all__)
    r = netfield.mean_field_criticality("relu", 1.5, 0.1)
    assert r.phase == "ordered"


def test_new_names_do_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        netfield.mean_field_criticality("tanh", weight_var=3.0, bias_var=0.05)
        netfield.one_loop(netfield.dnn(2, "tanh", weight_var=1.5, bias_var=0.5), np.ones((1, 1)))


def test_calling_netfield_criticality_warns_and_gives_the_same_result():
    with pytest.warns(DeprecationWarning, match=r"netfield\.criticality\(\.\.\.\) is deprecated.*"
                                                r"netfield\.mean_field_criticality") as record:
        old = netfield.criticality("tanh", weight_var=3.0, bias_var=0.05)
    assert record[0].filename == __file__  # the warning points at the caller
    assert old == netfield.mean_field_criticality("tanh", weight_var=3.0, bias_var=0.05)


def test_calling_netfield_nlo_warns_and_gives_the_same_result():
    net, x = netfield.rnn(3, "tanh", weight_var=1.5, bias_var=0.5, input_var=0.5), np.ones((1, 1))
    with pytest.warns(DeprecationWarning, match=r"netfield\.nlo\(\.\.\.\) is deprecated.*netfield\.one_loop"):
        old = netfield.nlo(net, x)
    new = netfield.one_loop(net, x)
    np.testing.assert_array_equal(old.mean_shift, new.mean_shift)
    np.testing.assert_array_equal(old.variance, new.variance)
