"""Property-based fuzzing of the command line: any override either trains or is refused in one line.

Overrides are drawn over the config schema itself: the keys and their types come from
``dataclasses.fields`` of :class:`RunConfig` and of the chosen preset's algorithm and env dataclasses
(a new key is fuzzed without editing this file). Values are right and wrong types, out-of-range
numbers, text, null, lists; the draws add unknown keys (with and without ``+``) and combinations the
config must cross-check. Every draw must either train a tiny budget to the end or raise a
:class:`ConfigError` whose message is one line; any other exception fails with the overrides.

Valid draws stay cheap because the strategy caps the numbers that size a run (``INT_CAPS``) and never
picks the ``wandb`` logger (it starts a service process); nothing is skipped after drawing.
"""
from __future__ import annotations

import copy
import dataclasses
import functools
import os
import re
import subprocess
import sys
import tempfile
import typing
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

from marl_torchrl.config import compose_config, validate
from marl_torchrl.config.run import LOGGERS
from marl_torchrl.config.store import group_options
from marl_torchrl.registry import ConfigError
from marl_torchrl.train import run

ALGORITHMS = group_options("algorithm")
ENVS = ["matrix/two_step", "matrix/one_step", "matrix/nonmonotonic", "gridworld/gridworld25", "vmas/balance"]
BASE = ["total_frames=64", "env.num_envs=8", "collector.frames_per_batch=32", "replay.batch_size=4",
        "replay.warmup=4", "eval.interval_frames=0", "eval.episodes=4", "model.hidden_dim=8",
        "checkpoint.interval_frames=1000000", "threads=1"]
# Valid values of these keys size the run: their draws stay below the cap (any other int key: 16;
# int keys never take a preset's value, e.g. total_frames=500000).
INT_CAPS = {"total_frames": 128, "env.num_envs": 16, "collector.frames_per_batch": 64, "threads": 2,
            "train.updates_per_batch": 4, "eval.episodes": 8, "model.layers": 3}
WRONG = ["abc", "1.5e3x", "", "null", "[1,2]", "{a:1}", "true", "-1", "0"]
SETTINGS = dict(deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def render(value) -> str:
    """A Python value as Hydra override text."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(render(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{render(v)}" for k, v in value.items()) + "}"
    return str(value)


def schema_keys(obj, prefix: str = "") -> dict[str, tuple]:
    """Dotted key -> (type, check) of every field of a config dataclass (nested dataclasses walked)."""
    hints, out = typing.get_type_hints(type(obj)), {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            out.update(schema_keys(value, f"{prefix}{f.name}."))
        else:
            out[f"{prefix}{f.name}"] = (hints[f.name], f.metadata.get("check"))
    return out


@functools.lru_cache(maxsize=None)
def preset(algorithm: str, env: str):
    return compose_config(f"algorithm={algorithm}", f"env={env}")


@functools.lru_cache(maxsize=None)
def preset_keys(algorithm: str, env: str) -> dict[str, tuple]:
    return schema_keys(preset(algorithm, env))


@functools.lru_cache(maxsize=None)
def preset_values() -> dict[str, list[str]]:
    """Key -> every value some preset gives it (mixer names, tasks, payoffs, weightings...)."""
    seen: dict[str, set] = {}
    cfgs = [compose_config(f"algorithm={a}") for a in ALGORITHMS] + [compose_config(f"env={e}") for e in ENVS]
    for cfg in cfgs:
        for key in schema_keys(cfg):
            node = cfg
            for part in key.split("."):
                node = getattr(node, part)
            seen.setdefault(key, set()).add(render(node))
    return {k: sorted(v) for k, v in seen.items()}


@functools.lru_cache(maxsize=None)
def all_field_names() -> list[str]:
    names = {k.rpartition(".")[2] for a in ALGORITHMS for e in ENVS for k in preset_keys(a, e)}
    return sorted(names | {"zzz", "lrr", "continuous"})


def values_for(key: str, tp, check=None) -> st.SearchStrategy[str]:
    """Override text for ``key`` of type ``tp``: mostly plausible values (in range, the check's choices,
    what presets set), else out-of-range numbers, odd text and wrong types."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Union and type(None) in args:  # Optional[X]: X's values or null
        inner = next(a for a in args if a is not type(None))
        return st.one_of(values_for(key, inner, check), st.just("null"))
    known = preset_values().get(key, [])
    own = [st.sampled_from(known)] if known else []
    edge = st.sampled_from(WRONG)
    if tp is bool:
        good = st.sampled_from(["true", "false"])
    elif tp is int:
        good, own = st.integers(1, INT_CAPS.get(key, 16)).map(str), []
        edge = st.one_of(edge, st.integers(-3, 0).map(str), st.sampled_from(["1.5", "-1000000000", "1e3"]))
    elif tp is float:
        good = st.floats(0.001, 1.0).map(repr)
        edge = st.one_of(edge, st.floats(-2, 2, allow_nan=False).map(repr),
                         st.sampled_from(["0.0", "1.5", "inf", "nan", "-1e9"]))
    elif tp is str:
        choices = [render(c) for c in getattr(check, "choices", ())]
        good = st.sampled_from(choices or ["abc"])
        edge = st.one_of(edge, st.sampled_from(["cpu", "cuda", "cuda:0", "cpu:1", "zz:1", "0.5"]))
    elif origin in (list, typing.List):  # loggers; wandb would start a service process
        good = st.lists(st.sampled_from([x for x in LOGGERS if x != "wandb"]), max_size=2, unique=True).map(render)
        edge = st.one_of(edge, st.sampled_from(["[mlflow]", "[csv,1]", "csv", "[[csv]]"]))
    elif origin in (dict, typing.Dict):
        good = st.just("{}")
        edge = st.one_of(edge, st.sampled_from(["{zzz:1}", "{n_agents:3}", "{hypernet_embed:8}", "{a:{b:1}}"]))
    else:  # Any: the payoffs and the like
        good = st.just("[[1,0],[0,1]]")
        edge = st.one_of(edge, st.sampled_from(["[[1,2],[3]]", "[[1,2,3],[4,5,6]]", "[]", "[[[1]]]", "[[a,b]]"]))
    return st.one_of(good, good, *own, edge)


COMBOS = [  # (keys they need, overrides): the cross-checks between keys
    (("algorithm.target_tau",), ["algorithm.target_hard_interval=10", "algorithm.target_tau=0.01"]),
    (("algorithm.target_tau",), ["algorithm.target_hard_interval=null", "algorithm.target_tau=null"]),
    (("replay.burn_in", "replay.seq_len"), ["replay.seq_len=4", "replay.burn_in=4"]),
    (("replay.burn_in", "replay.seq_len"), ["replay.seq_len=3", "replay.burn_in=7"]),
    (("replay.burn_in",), ["replay.burn_in=200"]),  # >= the env's own time limit
    (("collector.frames_per_batch", "env.num_envs"), ["env.num_envs=5", "collector.frames_per_batch=32"]),
    (("resume_buffer",), ["resume_buffer=true"]),
    (("algorithm.eps_end", "algorithm.eps_start"), ["algorithm.eps_start=0.1", "algorithm.eps_end=0.5"]),
    (("env.continuous_actions",), ["env.continuous_actions=true"]),
    (("algorithm.mixer", "algorithm.mixer_options"), ["algorithm.mixer=null", "algorithm.mixer_options={a:1}"]),
]


@st.composite
def overrides(draw) -> list[str]:
    algorithm, env = draw(st.sampled_from(ALGORITHMS)), draw(st.sampled_from(ENVS))
    keys = preset_keys(algorithm, env)
    drawn: dict[str, str] = {}
    for key in draw(st.lists(st.sampled_from(sorted(keys)), max_size=3, unique=True)):
        drawn[key] = draw(values_for(key, *keys[key]))
    combos = [o for need, o in COMBOS if all(k in keys for k in need)]
    if draw(st.integers(0, 3)) == 0:
        drawn.update(o.split("=", 1) for o in draw(st.sampled_from(combos)))
    if draw(st.integers(0, 5)) == 0:  # an unknown key (or a known one added with +)
        groups = sorted({k.rpartition(".")[0] for k in keys if "." in k})
        where = draw(st.sampled_from(["", *groups]))
        name = draw(st.sampled_from(all_field_names()))
        plus = draw(st.sampled_from(["", "+"]))
        drawn[f"{plus}{where}.{name}".replace("+.", "+").lstrip(".")] = draw(st.sampled_from(["1", "abc", "0.5"]))
    base = [b for b in BASE if b.split("=")[0] not in {k.lstrip("+") for k in drawn}]
    return [f"algorithm={algorithm}", f"env={env}", *base, *(f"{k}={v}" for k, v in drawn.items())]


def _assert_one_line(err: ConfigError) -> None:
    note(f"refused: {err}")
    text = str(err)
    assert text.strip() and "\n" not in text, f"ConfigError is not one line: {text!r}"


@settings(max_examples=40, **SETTINGS)
@given(overrides())
def test_any_override_trains_or_is_refused_in_one_line(argv):
    note(f"overrides: {' '.join(argv)}")
    try:
        cfg = compose_config(*argv)
    except ConfigError as err:
        event("refused by the config")
        return _assert_one_line(err)
    with tempfile.TemporaryDirectory() as run_dir:
        try:
            metrics = run(cfg, run_dir)
        except ConfigError as err:
            event("refused when built")
            return _assert_one_line(err)
        event("trained")
        if cfg.train.max_seconds is None:
            assert metrics["frames"] >= cfg.total_frames
        else:  # a drawn wall-clock budget ends the run at the first iteration past it: how far it got is timing
            assert metrics["frames"] > 0
        assert (Path(run_dir) / "models" / "final_model.pt").is_file()


@settings(max_examples=5, **SETTINGS)
@given(overrides())
def test_the_cli_exits_0_or_2_with_one_error_line(argv):
    note(f"overrides: {' '.join(argv)}")
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "WANDB_MODE": "disabled", "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}
        proc = subprocess.run([sys.executable, "-m", "marl_torchrl.train", *argv, f"hydra.run.dir={tmp}/run"],
                              cwd=tmp, capture_output=True, text=True, timeout=300, env=env)
    event(f"exit {proc.returncode}")
    note(f"exit {proc.returncode}\n--- stdout:\n{proc.stdout[-2000:]}\n--- stderr:\n{proc.stderr[-3000:]}")
    assert "Traceback" not in proc.stdout + proc.stderr
    assert proc.returncode in (0, 2)
    if proc.returncode == 2:
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: ") and len(lines[0]) > len("error: ")
    else:
        assert "done: " in proc.stdout


@pytest.mark.parametrize("bad", ["inf", "-inf", "nan"])
def test_no_float_key_takes_a_non_finite_number(bad):
    """``algorithm.lr=inf`` passed the ``> 0`` check and the run died at its first update; keys without a
    check (``env.food_reward``, ``algorithm.target_entropy``) took nan. Every float key of every preset
    refuses them now, before anything is built."""
    pairs = [(a, "matrix/two_step") for a in ALGORITHMS] + [("qmix", e) for e in ENVS]
    checked = 0
    for algorithm, env in pairs:
        cfg = preset(algorithm, env)
        for key, (tp, _) in preset_keys(algorithm, env).items():
            if float not in (tp, *typing.get_args(tp)):
                continue
            spoiled, (group, _, name) = copy.deepcopy(cfg), key.rpartition(".")
            setattr(functools.reduce(getattr, group.split("."), spoiled) if group else spoiled, name, float(bad))
            with pytest.raises(ConfigError, match=f"^{re.escape(key)} must be a finite number"):
                validate(spoiled)
            checked += 1
    assert checked > 30
    with pytest.raises(ConfigError, match="^algorithm.lr must be a finite number"):
        compose_config(f"algorithm.lr={bad}")


def test_no_logger_at_all_trains_to_the_end(tmp_path):
    metrics = run(compose_config("algorithm=vdn", "env=matrix/two_step", *BASE, "logger=[]"), tmp_path)
    assert metrics["frames"] >= 64
