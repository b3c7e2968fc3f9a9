"""One registry of optimizer metadata: what the CLI, compare, plots and table1 read."""

import inspect

import pytest

from deeprelax.cli._common import HPARAMS
from deeprelax.experiments import compare, plots
from deeprelax.optim import HJ, REGISTRY, ElasticSGD, EntropySGD, Heat, Parle, get


@pytest.mark.parametrize("cls", [EntropySGD, Heat, HJ, ElasticSGD, Parle])
def test_schema_is_the_constructor_signature(cls):
    sig = inspect.signature(cls.__init__)
    declared = {
        n: p.default for n, p in sig.parameters.items() if n not in ("self", "params", *cls._object_options)
    }
    assert cls.hyperparameters == declared
    opt = cls([__import__("torch").zeros(1, requires_grad=True)])
    for k, v in declared.items():
        if k == "lr":
            continue
        assert opt.defaults[k] == v


def test_costs_follow_the_optimizers_own_default_L():
    assert get("entropy-sgd").closure_calls({}) == 21 and get("entropy-sgd").effective_epoch_factor({}) == 20
    assert get("parle").inner_steps({}) == 25 and get("Parle").closure_calls({"L": 3}) == 4
    assert get("sgd").closure_calls({}) == 1 and get("elastic-sgd").effective_epoch_factor({}) == 1
    with pytest.raises(ValueError, match="unknown optimizer"):
        get("adam")
    with pytest.raises(ValueError, match="does not take alpha"):
        get("hj").check_hyperparameters({"alpha": 0.5})


def test_everything_else_reads_the_registry():
    assert set(plots.LABELS) == set(plots.COLORS) == set(REGISTRY)
    assert len(set(plots.COLORS.values())) == len(REGISTRY)
    assert compare.ORDER == tuple(REGISTRY)
    assert {n for n, i in REGISTRY.items() if i.parallel} == {"elastic-sgd", "parle"}


def test_every_hyperparameter_has_a_command_line_flag():
    no_flag = {
        "foreach",
        "seed",
        "process_group",
        "reference",
        "nesterov",
        "inner_nesterov",
        "dampening",
        "center",
        "moving_rate",
        "period",
    }  # object options: through a config's hparams
    wanted = {k for info in REGISTRY.values() for k in info.keywords} - no_flag
    assert wanted <= set(HPARAMS), sorted(wanted - set(HPARAMS))
