"""``import netfield`` stays cheap (issue 18, item 3): scikit-learn, matplotlib and scipy.stats /
scipy.optimize load only when a function that needs them runs, and every public name still resolves.

Behavioural, not a timing test: a fresh interpreter imports netfield and the test inspects
``sys.modules``. (Measured: ``import netfield`` ~0.1 s above ``import jax``, 0.7 s before; scipy.stats
alone cost ~0.35 s, scikit-learn ~0.1 s, scipy.optimize ~0.1 s, scipy.linalg ~0.1 s.)
"""

import json
import subprocess
import sys

import pytest

HEAVY = ("sklearn", "matplotlib", "scipy.stats", "scipy.optimize")


def _modules_after(code: str) -> set:
    script = code + "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return set(json.loads(proc.stdout.strip().splitlines()[-1]))


def _loaded(modules: set, package: str) -> list:
    return sorted(m for m in modules if m == package or m.startswith(package + "."))


def test_import_netfield_loads_no_heavy_dependency():
    modules = _modules_after("import netfield")
    assert "netfield" in modules and "jax" in modules
    for package in HEAVY:
        assert not _loaded(modules, package), f"import netfield loaded {package}: {_loaded(modules, package)[:5]}"


def test_public_names_resolve_and_load_their_dependency_on_first_use():
    # the scikit-learn estimators are still importable the same way; touching them loads sklearn
    modules = _modules_after("from netfield.gp import NNGPRegressor, NNGPClassifier, NetworkKernel\n"
                             "import netfield.gp as g\n"
                             "assert g.NNGPRegressor is NNGPRegressor and 'NetworkKernel' in dir(g)\n"
                             "assert NNGPRegressor.__module__ == 'netfield.gp.sklearn'")
    assert _loaded(modules, "sklearn")


def test_unknown_attribute_of_gp_still_raises_attribute_error():
    import netfield.gp

    with pytest.raises(AttributeError, match="netfield.gp.*no_such_name"):
        netfield.gp.no_such_name  # noqa: B018 - the attribute access is what is tested


def test_train_loads_the_training_package_on_first_use():
    modules = _modules_after("import netfield")
    assert not _loaded(modules, "netfield.training")
    modules = _modules_after("import netfield\n"
                             "assert netfield.train.__module__ == 'netfield.training.network'\n"
                             "assert netfield.TrainingPrediction.__module__ == 'netfield.training.result'\n"
                             "assert {'train', 'TrainingPrediction'} <= set(dir(netfield)) & set(netfield.__all__)")
    assert _loaded(modules, "netfield.training")
