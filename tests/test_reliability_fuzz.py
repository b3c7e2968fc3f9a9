"""Issue 13, proof: hypothesis-generated command lines for ``train``, ``compare`` and ``table1`` end in exit
0 or 2 (or argparse's ``SystemExit``), never in another exception. The heavy part is stubbed: the fuzz runs
the argument parser, the config building and validation, device checks and the construction of the network
and optimizer, then stops where training would start (``_Reached``). A few real tiny runs check the rest of
the path, and ``TrainConfig.from_dict`` is fuzzed with JSON-like documents (only ``ValueError``)."""

import itertools
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _tiny_run import tiny_train_argv
from deeprelax.cli import main
from deeprelax.cli._common import HPARAMS

pytestmark = pytest.mark.filterwarnings("ignore")  # optimizer warnings for odd hyperparameters are fine


class _Reached(Exception):
    """The stub where training (or the compare / table1 runs) would start."""


INTS = st.sampled_from(["-1", "0", "1", "2", "3", "7", "64", str(2**63), "1e3", "x", "", "2.5"])
FLOATS = st.sampled_from(["0", "0.1", "1", "-1", "1e-4", "nan", "inf", "-inf", "1e309", "abc", "", "3"])
WORDS = st.one_of(
    st.sampled_from(["", "-", "--", "x", "a=b", "=1", "--out", "-h?"]),
    st.text(alphabet="abc-=:,.01 ", max_size=8),
)
FILES = st.sampled_from(
    [
        "missing.json",
        "list.json",
        "null_hparams.json",
        "bool_epochs.json",
        "bad.json",
        "dup.json",
        "ok.json",
        "cell.json",
    ]
)
SCHEDULE = st.one_of(
    st.sampled_from(["0:1", "0:1,2:0.1", "0:1,0:2", "x", "", "0:-1", "1:nan", ":", "0:1:2"]),
    st.text(alphabet="0123456789:,.-e ", max_size=10),
)


def _flag(name, values):
    return st.tuples(st.just(name), values).map(list)


def _switch(name):
    return st.just([name])


TRAIN_OPTS = [
    _flag("--model", st.sampled_from(["lenet", "mnistfc", "allcnn", "vgg", ""])),
    _flag("--optimizer", st.sampled_from(["sgd", "entropy-sgd", "entropy_sgd", "hj", "heat", "HJ", "adam"])),
    *[_flag(f"--{n.replace('_', '-')}", INTS if t is int else FLOATS) for n, t in HPARAMS.items()],
    _switch("--nesterov"),
    _switch("--no-nesterov"),
    _flag("--epochs", INTS),
    _flag("--lr-schedule", SCHEDULE),
    _flag("--batch-size", INTS),
    _flag("--sampling", st.sampled_from(["replacement", "shuffle", "bootstrap"])),
    _flag("--steps-per-epoch", INTS),
    _flag("--n-train", INTS),
    _flag("--n-test", INTS),
    _flag("--data", st.sampled_from(["mnist-subset", "mnist", "fashion-mnist", "cifar10", "imagenet"])),
    _flag("--data-dir", st.sampled_from(["/nonexistent", "/dev/null", "."])),
    _switch("--augment"),
    _switch("--no-augment"),
    _flag("--dry-feed-batches", INTS),
    _flag("--seed", INTS),
    _flag("--device", st.sampled_from(["cpu", "cuda", "cuda:7", "mps", "tpu", "cuda:x", ""])),
    _flag("--threads", INTS),
    _flag("--model-option", WORDS),
    _flag(
        "--model-option",
        st.sampled_from(
            ["dropout=0.25", "bn=before", "fc_bn=true", "foo=1", "dropout=x", "hidden=0", "bn=none"]
        ),
    ),
    _flag("--config", FILES),
    _switch("--resume"),
    _switch("--overwrite"),
    _switch("--allow-env-change"),
    _switch("--no-progress"),
    st.tuples(WORDS).map(list),
]
COMPARE_OPTS = [
    _flag("--model", st.sampled_from(["lenet", "mnistfc", "allcnn"])),
    st.lists(st.sampled_from(["sgd", "entropy-sgd", "hj", "heat", "adam"]), min_size=1, max_size=3).map(
        lambda xs: ["--optimizers", *xs]
    ),
    _flag("--budget", INTS),
    _flag("--data", st.sampled_from(["mnist-subset", "mnist", "cifar10", "x"])),
    _flag("--seed", INTS),
    _flag("--steps-per-epoch", INTS),
    _flag("--n-train", INTS),
    _flag("--dry-feed-batches", INTS),
    _flag("--settings", FILES),
    _flag("--jobs", INTS),
    _flag("--threads", INTS),
    _flag("--device", st.sampled_from(["cpu", "cuda", "tpu"])),
    st.tuples(WORDS).map(list),
]
TABLE1_OPTS = [
    _flag("--model", st.sampled_from(["mnistfc", "lenet", "allcnn", "vgg"])),
    _flag("--optimizer", st.sampled_from(["sgd", "entropy-sgd", "hj", "heat", "adam"])),
    st.lists(INTS, min_size=1, max_size=3).map(lambda xs: ["--seeds", *xs]),
    _flag("--data", st.sampled_from(["mnist-subset", "cifar10", "x"])),
    _flag("--epochs", INTS),
    _flag("--steps-per-epoch", INTS),
    _flag("--dry-feed-batches", INTS),
    _switch("--show"),
    _flag("--device", st.sampled_from(["cpu", "cuda", "mps", "tpu"])),
    _flag("--threads", INTS),
    _flag("--out", st.sampled_from(["/dev/null/x", "cell"])),
    _switch("--no-progress"),
    st.tuples(WORDS).map(list),
]


def _argv(opts):
    return st.lists(st.one_of(*opts), max_size=6).map(lambda ps: list(itertools.chain.from_iterable(ps)))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from deeprelax.experiments.table1 import config_path

    d = tmp_path_factory.mktemp("fuzzfiles")
    docs = {
        "list.json": "[1, 2]",
        "null_hparams.json": '{"hparams": null}',
        "bool_epochs.json": '{"epochs": true}',
        "bad.json": "{",
        "dup.json": '{"seed": 1, "seed": 2}',
        "ok.json": '{"optimizer": "hj", "hparams": {"L": 2}}',
        "cell.json": config_path("lenet", "hj").read_text(),
    }
    for name, text in docs.items():
        (d / name).write_text(text)
    return d


def _stub_train(cfg, out, **kw):
    from deeprelax.experiments.train import _available_device, build_model_and_optimizer

    build_model_and_optimizer(cfg, _available_device(cfg.device))
    raise _Reached


def _stub_compare(configs, out, **kw):
    from deeprelax.experiments.train import _available_device

    for cfg in configs.values():
        _available_device(cfg.device)
    raise _Reached


def _stub_cell(model, optimizer, seeds, out, *, overrides=None, **kw):
    """What run_cell does before its first training run."""
    from deeprelax.experiments.table1 import load_cell
    from deeprelax.experiments.train import TrainConfig, _available_device

    doc = load_cell(model, optimizer)
    for seed in seeds:
        cfg = TrainConfig.from_dict({**doc["train"], **(overrides or {}), "seed": int(seed)})
        _available_device(cfg.device)
    raise _Reached


OUTCOMES: dict[str, int] = {}


def _check(argv):
    try:
        code = main(argv)
    except SystemExit as e:  # argparse: a usage error (2) or --help (0)
        assert e.code in (0, 2), argv
        OUTCOMES["argparse"] = OUTCOMES.get("argparse", 0) + 1
        return
    except _Reached:
        OUTCOMES["reached"] = OUTCOMES.get("reached", 0) + 1
        return
    assert code in (0, 2), argv
    OUTCOMES[f"exit {code}"] = OUTCOMES.get(f"exit {code}", 0) + 1


def _run_fuzz(monkeypatch_ctx, files, strategy, prefix, examples):
    import torch

    import deeprelax.experiments.compare as cmp
    import deeprelax.experiments.table1 as t1
    import deeprelax.experiments.train as tr

    monkeypatch_ctx.setattr(tr, "train", _stub_train)
    monkeypatch_ctx.setattr(cmp, "run_compare", _stub_compare)
    monkeypatch_ctx.setattr(t1, "run_cell", _stub_cell)
    monkeypatch_ctx.chdir(files)

    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    @given(strategy)
    def fuzz(extra):
        _check([*prefix, *extra])
        torch.set_num_threads(1)

    fuzz()


@pytest.mark.parametrize(
    "cmd,opts,examples",
    [("train", TRAIN_OPTS, 120), ("compare", COMPARE_OPTS, 60), ("table1", TABLE1_OPTS, 60)],
)
def test_cli_fuzz_ends_in_a_message_or_success(files, cmd, opts, examples, capsys):
    prefix = {
        "train": [cmd, "--out", str(files / "out")],
        "compare": [cmd],
        "table1": [cmd, "--model", "lenet", "--optimizer", "sgd"],
    }[cmd]  # options may override these
    OUTCOMES.clear()
    with pytest.MonkeyPatch.context() as mp:
        _run_fuzz(mp, files, _argv(opts), prefix, examples)
    print(f"\nfuzz outcomes {cmd}: {OUTCOMES}")
    # the fuzz must reach all three ends, not only argparse's usage errors
    assert OUTCOMES.get("argparse") and OUTCOMES.get("exit 2") and OUTCOMES.get("reached"), OUTCOMES


JSONISH = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-3, 2**65), st.floats(), st.text(max_size=6)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)
KEYS = st.sampled_from(
    [
        "model",
        "model_options",
        "optimizer",
        "hparams",
        "epochs",
        "lr_schedule",
        "batch_size",
        "sampling",
        "steps_per_epoch",
        "data",
        "data_dir",
        "n_train",
        "n_test",
        "augment",
        "dry_feed_batches",
        "eval_batch_size",
        "seed",
        "device",
        "threads",
        "junk",
    ]
)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.one_of(st.dictionaries(KEYS, JSONISH, max_size=5), JSONISH))
def test_train_config_from_json_raises_only_value_error(doc):
    from deeprelax.experiments.train import TrainConfig

    try:
        cfg = TrainConfig.from_dict(doc)
    except ValueError:
        return
    assert TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg  # a valid one round-trips


TINY = ["train", *tiny_train_argv()]
SAFE = st.lists(
    st.one_of(
        _flag("--optimizer", st.sampled_from(["sgd", "entropy-sgd", "hj", "heat"])),
        _flag("--lr", st.sampled_from(["0.01", "0.1", "1e9", "nan"])),
        _flag("--L", st.sampled_from(["0", "1", "2"])),
        _flag("--model", st.sampled_from(["lenet", "mnistfc"])),
        _switch("--resume"),
        _switch("--overwrite"),
        _flag("--model-option", st.sampled_from(["dropout=0", "bn=before", "bn=none"])),
        _flag("--sampling", st.sampled_from(["shuffle", "replacement"])),
        _flag("--seed", st.sampled_from(["0", "5"])),
    ),
    max_size=4,
).map(lambda parts: list(itertools.chain.from_iterable(parts)))


def test_real_tiny_runs_end_in_success_a_stop_or_a_message(tmp_path):
    """No stub: a handful of real one-step runs (into fresh and reused folders) end in 0, 1 (stopped: a
    non-finite loss) or 2."""
    counter = itertools.count()
    folders = [tmp_path / "a", tmp_path / "b"]

    @settings(max_examples=5, deadline=None, derandomize=True)
    @given(SAFE, st.booleans())
    def fuzz(extra, reuse):
        import torch

        out = folders[0] if reuse else tmp_path / f"fresh{next(counter)}"
        try:
            code = main([*TINY, *extra, "--out", str(out)])
        except SystemExit as e:
            assert e.code == 2, extra
            return
        finally:
            torch.set_num_threads(1)
        assert code in (0, 1, 2), extra
        assert Path(out).exists() or code == 2

    fuzz()
