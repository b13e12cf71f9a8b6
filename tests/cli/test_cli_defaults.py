"""CLI defaults equal the API's (issue 18, item 7), or differ for a reason stated in the help text."""

import inspect

import pytest

import netfield as nf
from netfield.cli import build_parser
from netfield.cli.common import network


def parse(*argv):
    return build_parser().parse_args(list(argv))


@pytest.mark.parametrize("command", ["kernel", "sample", "gp"])
@pytest.mark.parametrize("arch", ["dnn", "rnn", "gru", "lstm", "transformer", "conv", "batchnorm_mlp"])
def test_arch_commands_build_the_builders_default_network(command, arch):
    """Before: every --arch got erf and bias_var 0 (the GRU's default is 1, the LSTM's activation tanh)."""
    args = parse(command, "--arch", arch, "--depth", "2")
    assert repr(network(args, arch)) == repr(getattr(nf, arch)(2))
    given = parse(command, "--arch", arch, "--depth", "2", "--activation", "tanh", "--bias-var", "0.3")
    assert repr(network(given, arch)) == repr(getattr(nf, arch)(2, "tanh", bias_var=0.3))


def test_nlo_defaults_are_the_ordered_setting_of_docs_nlo_and_say_so():
    args = parse("nlo")
    assert repr(network(args, "rnn")) == repr(nf.rnn(6, "tanh", weight_var=1.5, bias_var=0.5, input_var=0.5))
    text = " ".join(build_parser()._subparsers._group_actions[0].choices["nlo"].format_help().split())
    assert "defaults are the ordered setting of docs/nlo.md" in text and "(default: 1.5)" in text


def test_converge_defaults_are_convergence_studys():
    from netfield.experiments.convergence import convergence_study

    api = inspect.signature(convergence_study).parameters
    args = parse("converge")
    for name in ("activation", "depth", "bias_var", "input_var", "readout_var", "readout_bias_var", "networks",
                 "seed", "chunk_size"):
        assert getattr(args, name) == api[name].default, name
    assert tuple(args.weight_vars) == api["weight_vars"].default and tuple(args.widths) == api["widths"].default


def test_feature_defaults_are_the_feature_studys_and_say_so():
    from netfield.feature.study import SAMPLER, TOY

    args = parse("feature")
    assert (args.depth, args.activation, args.weight_var, args.kappa) == (TOY["steps"], TOY["activation"],
                                                                         TOY["weight_var"], TOY["kappa"])
    assert (args.chains, args.samples, args.thin, args.burn_in) == tuple(SAMPLER[k] for k in
                                                                         ("chains", "samples", "thin", "burn_in"))
    text = " ".join(build_parser()._subparsers._group_actions[0].choices["feature"].format_help().split())
    assert "not netfield.rnn's 1.0: the toy task of docs/feature.md" in text
    assert "the feature study's; posterior_samples: 200" in text


def test_gp_defaults_are_the_estimators():
    from netfield.gp import NNGPClassifier

    est = NNGPClassifier().get_params()
    args = parse("gp")
    assert (args.method, args.noise, args.readout, args.standardize) == (est["method"], est["noise"], est["readout"],
                                                                          est["standardize"])
