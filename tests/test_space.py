"""Space files and the keras-tuner -> Optuna bridge: distributions, conditions, errors, the shipped spaces."""

from __future__ import annotations

import copy
import dataclasses
import pickle
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from search.errors import UserError
from search.params import PRESETS, check, validate
from search.bridge import define_by_run, load_space, sample
from search.settings import Settings
from search.space import Space

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = [ROOT / "spaces" / "quick.py", ROOT / "spaces" / "wide.py", ROOT / "tests" / "spaces" / "tiny.py"]

# The known-good model (~84 % test), as the wide space spells it.
KNOWN_GOOD = {
    "input_mode": "rgb",
    "kernel_size": 3,
    "residual": False,
    "padding": "same",
    "blocks": 4,
    "filters": 32,
    "filter_growth": 2.0,  # 32/64/128/256
    "batchnorm": True,
    "dropout": 0.0,
    "head": "global_avg",
    "dense_units": 128,
    "head_dropout": 0.5,
    "augment": 0.5,
    "learning_rate": 1e-3,
    "schedule": "constant",
    "epochs": 30,
    "batch_size": 64,
    "pose": "as_is",  # the hand pick of 2026-11-29 read digits as they are
    "train_views": 1,
    "tta_views": 1,
}


def inline(define, **settings) -> Space:
    """A Space around a function of this file, skipping load_space (so any hp name goes)."""
    return Space(Path("inline.py"), "", Settings(**settings), define)


def trial(sampler=None, **enqueued) -> optuna.trial.Trial:
    study = optuna.create_study(sampler=sampler or optuna.samplers.RandomSampler(seed=0))
    if enqueued:
        study.enqueue_trial(enqueued)
    return study.ask()


def write(tmp_path: Path, text: str, name: str = "space.py") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


# The bridge


def every_kind(hp):
    hp.Int("int", 1, 4)
    hp.Int("int_step", 8, 64, step=8)
    hp.Int("int_log", 8, 256, sampling="log")
    hp.Float("float", 0.0, 0.5)
    hp.Float("float_step", 0.0, 0.5, step=0.1)
    hp.Float("float_log", 1e-4, 1e-2, sampling="log")
    hp.Choice("choice", ["a", "b", "c"])
    hp.Boolean("bool")
    hp.Fixed("fixed", 7)


def test_each_kind_maps_to_its_optuna_distribution():
    t = trial()
    params = sample(inline(every_kind), t)
    assert t.distributions == {
        "int": IntDistribution(1, 4),
        "int_step": IntDistribution(8, 64, step=8),
        "int_log": IntDistribution(8, 256, log=True),
        "float": FloatDistribution(0.0, 0.5),
        "float_step": FloatDistribution(0.0, 0.5, step=0.1),
        "float_log": FloatDistribution(1e-4, 1e-2, log=True),
        "choice": CategoricalDistribution(["a", "b", "c"]),
        "bool": CategoricalDistribution([False, True]),
    }
    assert {name: params[name] for name in t.params} == t.params
    assert params["fixed"] == 7  # in the params, not sampled


def test_settings_fill_what_the_space_leaves_unset():
    params = sample(inline(lambda hp: hp.Int("blocks", 1, 4), batch_size=32, max_epochs=7, seed=5), trial())
    assert params == {"blocks": params["blocks"], "batch_size": 32, "epochs": 7, "schedule_epochs": 7, "seed": 5}

    def own(hp):
        hp.Choice("batch_size", [16, 64])
        hp.Int("epochs", 8, 30)
        hp.Fixed("seed", 3)

    params = sample(inline(own, max_epochs=20), trial(batch_size=64, epochs=25))
    assert params == {"batch_size": 64, "epochs": 20, "schedule_epochs": 20, "seed": 3}  # epochs capped at max_epochs
    # A sampled budget is the trial's, but the cosine schedule decays over max_epochs in every trial.
    assert sample(inline(own, max_epochs=20), trial(batch_size=16, epochs=9)) == {
        "batch_size": 16, "epochs": 9, "schedule_epochs": 20, "seed": 3}


def test_conditional_scope_leaves_inactive_params_out():
    def define(hp):
        hp.Choice("head", ["flatten", "global_avg"])
        with hp.conditional_scope("head", ["flatten"]):
            hp.Int("dense_units", 8, 16)
        hp.Int("epochs", 5, 10, parent_name="head", parent_values=["global_avg"])

    t = trial(head="global_avg")
    params = sample(inline(define), t)
    assert "dense_units" not in params and "dense_units" not in t.distributions
    assert set(t.distributions) == {"head", "epochs"}

    t = trial(head="flatten")
    params = sample(inline(define), t)
    assert set(t.distributions) == {"head", "dense_units"} and 8 <= params["dense_units"] <= 16


def test_python_control_flow_leaves_unreached_params_out():
    def define(hp):
        for i in range(hp.Int("blocks", 1, 4)):
            hp.Int(f"filters_{i}", 8, 64, step=8)

    t = trial(blocks=2)
    params = sample(inline(define), t)
    assert set(t.distributions) == {"blocks", "filters_0", "filters_1"}
    assert "filters_2" not in params


def test_repeated_name_keeps_its_value():
    def define(hp):
        assert hp.Int("blocks", 1, 4) == hp.Int("blocks", 1, 4)

    sample(inline(define), trial())


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda hp: hp.Int("filters", 4, 64, sampling="reverse_log"), r"hp\.Int\('filters'\): sampling='reverse_log'"),
        (lambda hp: hp.Float("lr", 1e-4, 1e-2, sampling="reverse_log"), r"hp\.Float\('lr'\): sampling='reverse_log'"),
        (lambda hp: hp.Int("filters", 4, 64, step=2, sampling="log"), r"hp\.Int\('filters'\): sampling='log' with"),
        (lambda hp: hp.Float("lr", 1e-4, 1e-2, step=10, sampling="log"), r"hp\.Float\('lr'\): sampling='log' with"),
    ],
)
def test_unsupported_sampling_is_a_user_error_naming_the_hp(call, message):
    with pytest.raises(UserError, match=message):
        sample(inline(call), trial())


def test_works_through_rays_captor():
    from ray.tune.search.optuna.optuna_search import _OptunaTrialSuggestCaptor

    space = load_space(ROOT / "spaces" / "wide.py")
    captor = _OptunaTrialSuggestCaptor(trial())
    returned = define_by_run(space)(captor)
    assert captor.captured_values and captor.captured_values.items() <= returned.items()
    merged = {**captor.captured_values, **returned}  # what OptunaSearch makes the trial's config
    assert merged == returned
    validate(merged)


def test_rays_optuna_search_suggests_and_checkpoints(tmp_path):
    from ray.tune.search.optuna import OptunaSearch

    space = load_space(ROOT / "tests" / "spaces" / "tiny.py")
    searcher = OptunaSearch(space=define_by_run(space), metric="val_accuracy", mode="max", seed=0)
    config = searcher.suggest("t1")
    assert config["input_mode"] == "occupancy" and config["epochs"] == 3
    validate(config)
    searcher.save(str(tmp_path / "searcher.pkl"))  # plain pickle, space included
    restored = OptunaSearch(space=define_by_run(space), metric="val_accuracy", mode="max")
    restored.restore(str(tmp_path / "searcher.pkl"))
    validate(restored.suggest("t2"))


def test_space_pickles_as_its_file_and_refuses_a_changed_one(tmp_path):
    path = write(tmp_path, "def space(hp):\n    hp.Int('blocks', 1, 2)\n")
    space = load_space(path)
    space = dataclasses.replace(space, settings=space.settings.replace(max_epochs=7))
    data = pickle.dumps(define_by_run(space))
    params = pickle.loads(data)(trial())
    assert params["blocks"] in (1, 2) and params["epochs"] == 7  # replaced settings survive
    assert copy.deepcopy(space) is space  # copies must not load the file again
    path.write_text("def space(hp):\n    hp.Int('blocks', 1, 3)\n")
    with pytest.raises(UserError, match="changed since the search started"):
        pickle.loads(data)


def test_tpe_with_a_seed_repeats_its_configurations():
    space = load_space(ROOT / "spaces" / "wide.py")

    def configs() -> list[dict]:
        study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=1))
        out = []
        for _ in range(12):  # past TPE's 10 random start-up trials
            t = study.ask()
            out.append(sample(space, t))
            study.tell(t, out[-1]["learning_rate"] * out[-1]["blocks"])
        return out

    assert configs() == configs()


# load_space errors: one line, naming the file (and the line when known)

OK = "def space(hp):\n    hp.Int('blocks', 1, 2)\n"  # a valid space, under the SEARCH cases
BAD = {
    "syntax": ("def space(hp)\n    pass\n", r":1: expected ':'"),
    "import raises": ("x = 1\nraise RuntimeError('boom')\n", r":2: RuntimeError: boom"),
    "no space": ("SEARCH = {}\n", r": defines no space\(hp\) function"),
    "space not callable": ("space = 3\n", r": space must be a function space\(hp\), got int"),
    "space signature": ("def space():\n    pass\n", r":1: space must take one argument, hp"),
    "space raises": (OK + "    1 / 0\n", r":3: ZeroDivisionError: division by zero"),
    "keras-tuner rejects": ("def space(hp):\n    hp.Int('blocks', 4, 1)\n", r":2: ValueError: .*min_value 4 is"),
    "empty": ("def space(hp):\n    pass\n", r": space\(hp\) declares no hyperparameters"),
    "unsupported": (
        "def space(hp):\n    hp.Float('learning_rate', 1e-4, 1e-2, sampling='reverse_log')\n",
        r":2: hp\.Float\('learning_rate'\): sampling='reverse_log' is not supported",
    ),
    "unknown name": ("def space(hp):\n    hp.Int('blokcs', 1, 4)\n", r": unknown parameter 'blokcs'"),
    "out of range": ("def space(hp):\n    hp.Float('dropout', 0.0, 0.95)\n", r": parameter 'dropout': .*got 0\.95"),
    "bad choice": ("def space(hp):\n    hp.Choice('padding', ['same', 'full'])\n", r": parameter 'padding': .*'full'"),
    "filters past blocks": (
        "def space(hp):\n    hp.Int('blocks', 1, 4)\n    for i in range(4):\n        hp.Int(f'filters_{i}', 8, 16)\n",
        r": parameter 'filters_1': filters_1 given but blocks is 1",
    ),
    "SEARCH not a dict": ("SEARCH = [1]\n" + OK, r": SEARCH must be a dict, got list"),
    "SEARCH key": ("SEARCH = {'sample': 3}\n" + OK, r": SEARCH has unknown key 'sample'"),
    "SEARCH type": ("SEARCH = {'samples': '9'}\n" + OK, r": SEARCH\['samples'\]='9' must be an int >= 1"),
    "SEARCH grace": (
        "SEARCH = {'grace_period': 9, 'max_epochs': 5}\n" + OK,
        r": SEARCH\['grace_period'\]=9 exceeds max_epochs=5$",
    ),
    "SEARCH baseline": (
        "SEARCH = {'baselines': ['mnist']}\n" + OK,
        r": SEARCH\['baselines'\]='mnist' names unknown preset 'mnist'",
    ),
    "SEARCH fraction": (
        "SEARCH = {'val_fraction': 1.5}\n" + OK,
        r": SEARCH\['val_fraction'\]=1\.5 must be a number in \(0, 1\)",
    ),
}


@pytest.mark.parametrize("text, message", BAD.values(), ids=BAD.keys())
def test_bad_space_file_is_one_line_naming_the_file(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(UserError) as info:
        load_space(path)
    assert "\n" not in str(info.value)
    assert re.match(re.escape(str(path)) + message, str(info.value)), str(info.value)


def test_missing_space_file(tmp_path):
    with pytest.raises(UserError, match=re.escape(f"{tmp_path / 'nope.py'}: cannot read space file: No such file")):
        load_space(tmp_path / "nope.py")


def test_settings_validate_when_built_directly():
    assert Settings().samples == 20 and Settings().baselines == ()
    assert Settings(baselines=["medium"]).baselines == ("medium",)
    with pytest.raises(UserError, match=r"SEARCH\['reduction_factor'\]=1 must be an int >= 2"):
        Settings(reduction_factor=1)
    with pytest.raises(UserError, match=r"SEARCH\['max_concurrent'\]=True must be an int >= 1"):
        Settings(max_concurrent=True)
    assert Settings().replace(samples=3).samples == 3
    with pytest.raises(UserError, match=r"SEARCH\['grace_period'\]=2 exceeds max_epochs=1"):
        Settings().replace(max_epochs=1)


def test_baselines_are_presets_or_named_configurations_capped_and_seeded_like_trials():
    settings = Settings(max_epochs=4, seed=7, baselines=[
        "notebook",
        {"name": "wider", "preset": "machinecurve", "filters": 64},
        {"name": "diverges", "filters": 4, "fault": "nan"},
    ])
    configs = settings.baseline_configs()
    assert list(configs) == ["notebook", "wider", "diverges"]
    same = {"epochs": 4, "schedule_epochs": 4, "seed": 7}  # capped at max_epochs, and the trials' schedule horizon
    assert configs["notebook"] == validate({**PRESETS["notebook"], **same})
    assert configs["wider"] == validate({**PRESETS["machinecurve"], "filters": 64, **same})
    assert configs["diverges"] == {**validate({"filters": 4, **same}), "fault": "nan"}
    assert hash(settings)  # SEARCH's dicts are kept hashable
    for entry, message in [
        ({"preset": "machinecurve"}, r"=\{'preset': 'machinecurve'\} needs a unique 'name' string, got None"),
        ({"name": "x", "preset": "mnist"}, r"='x' names unknown preset 'mnist'"),
        ({"name": "x", "fault": "segfault"}, r"='x' has unknown fault 'segfault' \(known: raise, nan, lost\)"),
        ({"name": "x", "filters": 1}, r"='x' parameter 'filters': expected a value in \[4, 512\], got 1"),
        (3, r"=3 must be a preset name or a \{'name': ...\} dict"),
    ]:
        with pytest.raises(UserError, match=r"SEARCH\['baselines'\]" + message):
            Settings(baselines=[entry])
    with pytest.raises(UserError, match="needs a unique 'name'"):
        Settings(baselines=["medium", {"name": "medium"}])


# The shipped spaces


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_space_loads_and_samples_valid_params(path):
    space = load_space(path)
    assert space.path == path and len(space.sha256) == 64
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(20):
        params = validate(sample(space, study.ask()))
        assert params["epochs"] <= space.settings.max_epochs


def test_shipped_settings():
    assert load_space(ROOT / "spaces" / "quick.py").settings == Settings(
        samples=3, max_epochs=10, grace_period=3, reduction_factor=3, max_concurrent=2, finalists=0)
    wide = load_space(ROOT / "spaces" / "wide.py").settings
    assert (wide.time_budget_s, wide.samples, wide.startup_trials) == (210, 400, 16)
    assert (wide.max_epochs, wide.grace_period, wide.reduction_factor, wide.brackets) == (150, 10, 3, 1)
    assert (wide.finalists, wide.checkpoint_every, wide.steps_per_execution) == (3, 10, 8)
    assert wide.baselines == ("machinecurve", "medium", "notebook")


def test_wide_space_keeps_every_knob_and_leaves_the_budget_to_asha():
    space = load_space(ROOT / "spaces" / "wide.py")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(30):
        params = sample(space, study.ask())
        assert params["epochs"] == params["schedule_epochs"] == 150
        seen |= set(params)
    assert {"input_mode", "kernel_size", "residual", "padding", "blocks", "filters", "filter_growth", "batchnorm",
            "dropout", "head", "dense_units", "head_dropout", "augment", "learning_rate", "schedule",
            "batch_size", "pose", "fusion", "train_views", "tta_views"} <= seen


def test_new_settings_are_checked():
    assert Settings().finalists == 3 and Settings().checkpoint_every == 5 and Settings().steps_per_execution == 8
    for key, value in [("finalists", -1), ("checkpoint_every", 0), ("steps_per_execution", 0), ("brackets", 0),
                       ("startup_trials", 0)]:
        with pytest.raises(UserError, match=rf"SEARCH\['{key}'\]={value} must be an int"):
            Settings(**{key: value})
    for value in (0, -5, "60"):
        with pytest.raises(UserError, match=rf"SEARCH\['time_budget_s'\]={value!r} must be a number of seconds"):
            Settings(time_budget_s=value)
    assert Settings(samples=24).tpe_startup_trials() == 8 and Settings(samples=400, startup_trials=16).tpe_startup_trials() == 16


def test_wide_space_expresses_the_known_good_model():
    params = sample(load_space(ROOT / "spaces" / "wide.py"), trial(**KNOWN_GOOD))
    assert params == {**KNOWN_GOOD, "epochs": 150, "schedule_epochs": 150, "seed": 0}
    assert check(params) is None


def test_tiny_space_first_samples_mix_feasible_and_infeasible():
    # What Ray's OptunaSearch(seed=0) proposes for the end-to-end tests: TPE's random start-up trials.
    space = load_space(ROOT / "tests" / "spaces" / "tiny.py")
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=space.settings.seed))
    reasons = [check(sample(space, study.ask())) for _ in range(space.settings.samples)]
    assert None in reasons and any(reasons)


def test_importing_the_module_imports_neither_tensorflow_nor_ray():
    code = "import sys, search.space; print(sorted({'tensorflow', 'keras', 'ray', 'optuna'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"
