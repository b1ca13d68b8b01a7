"""The schemas in Hydra's ConfigStore, composing a checked :class:`RunConfig`, and errors in one line.

Every dataclass is stored as ``schema/<algorithm|env>/<name>`` (``run_schema`` for the run); presets in
``configs/`` start from one through ``defaults:``. Keys typed ``Dict[str, Any]`` (mixer options, VMAS
scenario and PettingZoo keyword arguments) stay open: any key may be set there, and their owner (the
mixer, the scenario) refuses unknown ones when it is built.

>>> cfg = compose_config("algorithm=vdn", "env=matrix/two_step", "replay.burn_in=0")
>>> type(cfg).__name__, type(cfg.algorithm).__name__, type(cfg.env).__name__, cfg.algorithm.mixer
('RunConfig', 'ValueDecompositionConfig', 'MatrixTwoStepConfig', 'vdn')
>>> compose_config("replay.batch_size=abc")
Traceback (most recent call last):
...
marl_torchrl.registry.ConfigError: replay.batch_size: Value 'abc' of type 'str' could not be converted to Integer
>>> compose_config("no_such_key=1")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
marl_torchrl.registry.ConfigError: unknown key 'no_such_key' (an unknown option of the run); known: algorithm, checkpoint, ...env, ...
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Iterable, Mapping

from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

from marl_torchrl.config.algorithms import ALGORITHM_SCHEMAS
from marl_torchrl.config.envs import ENV_SCHEMAS
from marl_torchrl.config.fields import validate
from marl_torchrl.config.run import RunConfig
from marl_torchrl.registry import ConfigError

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"  # shipped in the package; ./configs links here
GROUPS = ("algorithm", "env", "experiment")
_stored: set = set()


def _open_dicts(node: DictConfig) -> DictConfig:
    """Let ``Dict[str, Any]`` fields take new keys without ``+`` (their owner checks them)."""
    for key in node.keys():
        if OmegaConf.is_missing(node, key):
            continue
        value = node.get(key)
        if isinstance(value, DictConfig):
            if OmegaConf.get_type(value) is dict:
                OmegaConf.set_struct(value, False)
            else:
                _open_dicts(value)
    return node


def store_schema(kind: str, name: str, schema: type) -> None:
    """Put ``schema`` in Hydra's ConfigStore as ``schema/<kind>/<name>``."""
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(group=f"schema/{kind}", name=name,
                                 node=_open_dicts(OmegaConf.structured(schema)))
    _stored.add((kind, name))


def register_schemas() -> None:
    """Store every schema once (idempotent)."""
    if ("run", "run") in _stored:
        return
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name="run_schema", node=_open_dicts(OmegaConf.structured(RunConfig)))
    _stored.add(("run", "run"))
    for name, schema in ALGORITHM_SCHEMAS.items():
        store_schema("algorithm", name, schema)
    for family, schema in ENV_SCHEMAS.items():
        for task, cls in ([(None, schema)] if isinstance(schema, type) else schema.items()):
            store_schema("env", family if task is None else f"{family}_{task}", cls)


def schema_name(obj: Any, kind: str) -> str:
    """The registered schema name of a config object's class (its nearest registered ancestor)."""
    table = ALGORITHM_SCHEMAS if kind == "algorithm" else {
        (f if isinstance(s, type) else f"{f}_{t}"): c
        for f, s in ENV_SCHEMAS.items() for t, c in ([(None, s)] if isinstance(s, type) else s.items())
    }
    for cls in type(obj).__mro__:
        for name, schema in table.items():
            if schema is cls:
                return name
    raise ConfigError(f"{type(obj).__name__} is no registered {kind} config")


def unknown_key(key: str, known: Iterable[str] | None) -> str:
    """The one message of every unknown key, wherever it is caught.

    >>> unknown_key("algorithm.lrr", ["lr", "gamma"])
    "unknown key 'algorithm.lrr' (an unknown option of algorithm); known: gamma, lr"
    """
    group = key.rpartition(".")[0] or "the run"
    options = f"; known: {', '.join(sorted(known))}" if known else ""
    return f"unknown key '{key}' (an unknown option of {group}){options}"


def one_line(err: BaseException, known: Any = None) -> str:
    """An OmegaConf / Hydra error as one line naming the key."""
    cause = err
    while cause.__cause__ is not None and not isinstance(cause, OmegaConfBaseException):
        cause = cause.__cause__
    text = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
    key = getattr(cause, "full_key", None)
    if "not in" in text and "Key" in text and key:
        return unknown_key(key, known)
    if isinstance(cause, MissingMandatoryValue) and key:
        return f"{key.rpartition('.')[0] or 'the config'} needs a '{key.rpartition('.')[2]}'"
    if key:
        return f"{key}: {text}"
    return text


def _known_at(cfg: DictConfig, full_key: str | None) -> list[str] | None:
    if not full_key:
        return None
    parent = full_key.rpartition(".")[0]
    node = cfg if not parent else OmegaConf.select(cfg, parent)
    return list(node.keys()) if isinstance(node, DictConfig) else None


def check_group_choices(argv: Iterable[str], config_dir: Path = CONFIG_DIR) -> None:
    """Raise :class:`ConfigError` for ``group=option`` arguments naming no preset.

    >>> check_group_choices(["algorithm=qmx"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    marl_torchrl.registry.ConfigError: unknown algorithm 'qmx'; known: ..., iql, ..., qmix, ..., vdn
    """
    for arg in argv:
        key, sep, value = arg.partition("=")
        key = key.lstrip("+~")
        if not sep or key not in GROUPS:
            continue
        known = group_options(key, config_dir)
        if value not in known:
            families = sorted({k.split("/")[0] for k in known if "/" in k})
            hint = f" (families: {', '.join(families)})" if families else ""
            raise ConfigError(f"unknown {key} '{value}'; known: {', '.join(known)}{hint}")


def group_options(group: str, config_dir: Path = CONFIG_DIR) -> list[str]:
    """Presets of a group, nested ones as ``family/task`` (e.g. ``vmas/balance``)."""
    root = config_dir / group
    return sorted(str(p.relative_to(root).with_suffix("")) for p in root.rglob("*.yaml"))


def override_value(argv: Iterable[str], key: str) -> str | None:
    """The value a command line gives ``key`` (``key=``, ``+key=``, ``~key=``; the last one wins), or None.

    >>> override_value(["-m", "experiment=smax_3m", "seed=0,1"], "experiment")
    'smax_3m'
    >>> override_value(["seed=0"], "experiment") is None
    True
    """
    chosen = None
    for arg in argv:
        name, sep, value = arg.partition("=")
        if sep and name.lstrip("+~") == key:
            chosen = value
    return chosen


def untuned_note(overrides: Iterable[str], algorithm: str, config_dir: Path = CONFIG_DIR) -> str | None:
    """A one-line note when ``experiment=<task>`` is chosen with an algorithm it has no settings for
    (``experiment_algorithm/<task>/<algorithm>.yaml``): that algorithm's keys keep its preset's values.

    >>> print(untuned_note(["experiment=lbf_8x8_2p_2f_coop"], "dop"))  # doctest: +ELLIPSIS
    note: experiment lbf_8x8_2p_2f_coop has algorithm settings for cw_qmix, ..., vdn, not for dop; ...
    >>> untuned_note(["experiment=lbf_8x8_2p_2f_coop"], "qmix") is None
    True
    """
    task = override_value(overrides, "experiment")
    if not task:
        return None
    root = config_dir / "experiment_algorithm" / task
    tuned = sorted(p.stem for p in root.glob("*.yaml") if not p.stem.startswith("_"))
    if not tuned or algorithm in tuned:
        return None
    return (f"note: experiment {task} has algorithm settings for {', '.join(tuned)}, not for {algorithm}; "
            f"its algorithm keys keep the {algorithm} preset's values")


def compose_dict(*overrides: str, config_dir: Path = CONFIG_DIR) -> DictConfig:
    """The composed (typed, unchecked) config ``marl-train <overrides>`` would run with."""
    from hydra import compose, initialize_config_dir

    register_schemas()
    check_group_choices(overrides, config_dir)
    with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
        try:
            return compose("config", overrides=list(overrides))
        except Exception as err:  # noqa: BLE001 - Hydra's and OmegaConf's errors, reported in one line
            known = None
            if "not in" in str(getattr(err, "__cause__", "")):
                groups = [o for o in overrides if o.partition("=")[0].lstrip("+~") in GROUPS]
                known = _known_at(compose("config", overrides=groups), getattr(err.__cause__, "full_key", None))
            raise ConfigError(one_line(err, known)) from None


def to_run_config(cfg: Any) -> RunConfig:
    """A checked :class:`RunConfig` from a composed ``DictConfig``, a RunConfig (checked again) or a plain
    mapping such as a checkpoint's resolved config."""
    typed = isinstance(cfg, DictConfig) and OmegaConf.get_type(cfg) is RunConfig
    if not typed and (isinstance(cfg, (Mapping, DictConfig))):
        plain = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)
        plain.pop("hydra", None)
        from marl_torchrl.config.coerce import run_config_from_dict

        return run_config_from_dict(plain)
    if isinstance(cfg, DictConfig):
        if "hydra" in cfg:  # a config composed with Hydra's own node: the run's keys only
            cfg = cfg.copy()
            with open_dict(cfg):
                cfg.pop("hydra")
        _refuse_added_keys(cfg, "")
        try:
            cfg = OmegaConf.to_object(cfg)
        except OmegaConfBaseException as err:
            raise ConfigError(one_line(err)) from None
    if not isinstance(cfg, RunConfig):
        raise ConfigError(f"expected a RunConfig or a composed config, got {type(cfg).__name__}")
    for f in dataclasses.fields(cfg):  # groups given as mappings of their keys (Python users)
        value = getattr(cfg, f.name)
        if f.name == "env" and not dataclasses.is_dataclass(value):
            from marl_torchrl.config.envs import env_config

            setattr(cfg, "env", env_config(value))
        elif callable(f.default_factory) and isinstance(value, Mapping):
            from marl_torchrl.config.coerce import as_config

            setattr(cfg, f.name, as_config(value, type(f.default_factory()), f.name))
    validate(cfg)
    return cfg


def _refuse_added_keys(node: DictConfig, prefix: str) -> None:
    """A key added with ``+key=`` to a typed group would be dropped silently when the dataclass is built."""
    schema = OmegaConf.get_type(node)
    if not dataclasses.is_dataclass(schema):
        return
    known = {f.name for f in dataclasses.fields(schema)}
    for key in node.keys():
        if key not in known:
            raise ConfigError(unknown_key(f"{prefix}{key}", known))
        if not OmegaConf.is_missing(node, key) and isinstance(node.get(key), DictConfig):
            _refuse_added_keys(node.get(key), f"{prefix}{key}.")


def compose_config(*overrides: str, config_dir: Path = CONFIG_DIR) -> RunConfig:
    """The checked :class:`RunConfig` of ``marl-train <overrides>``: the one way to get CLI numbers in Python."""
    return to_run_config(compose_dict(*overrides, config_dir=config_dir))
