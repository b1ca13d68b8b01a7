"""Config objects from plain values: a schema filled from a mapping, checked, with errors in one line.

Python users and checkpoints hand over plain mappings; :func:`as_config` and :func:`structured_from`
turn them into the schema's dataclass (unknown keys, wrong types and missing keys refused in one line);
:func:`run_config_from_dict` rebuilds a whole :class:`RunConfig` from a checkpoint's resolved config.

>>> from marl_torchrl.config.run import ModelConfig
>>> as_config({"typ": "mlp"}, ModelConfig, "model")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
marl_torchrl.registry.ConfigError: unknown key 'model.typ' (an unknown option of model); known: activation, ...
"""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

from marl_torchrl.config.algorithms import ALGORITHM_SCHEMAS
from marl_torchrl.config.envs import env_schema
from marl_torchrl.config.fields import field_help, validate
from marl_torchrl.config.run import RunConfig
from marl_torchrl.config.store import _open_dicts, compose_config, schema_name, unknown_key
from marl_torchrl.registry import ConfigError


def structured_from(schema: type, values: Mapping, prefix: str, what: str = "") -> Any:
    """``schema`` filled from ``values`` (a mapping or OmegaConf node); bad keys and types in one line."""
    _check_plain_types(schema, values, prefix)
    base = _open_dicts(OmegaConf.structured(schema))
    try:
        return OmegaConf.to_object(OmegaConf.merge(base, values))
    except OmegaConfBaseException as err:
        key = getattr(err, "full_key", "") or ""
        if "not in" in str(err):
            known = [f.name for f in dataclasses.fields(schema)]
            message = unknown_key(f"{prefix}.{key}", known).replace(f"of {prefix})", f"of {what or prefix})")
            raise ConfigError(message) from None
        if isinstance(err, MissingMandatoryValue):
            raise ConfigError(f"{prefix} needs a '{key}' ({dict(field_help(schema)).get(key, '')})") from None
        raise ConfigError(f"{prefix}.{key}: {str(err).splitlines()[0]}") from None


def _check_plain_types(schema: type, values: Mapping, prefix: str) -> None:
    """Python values are taken as typed: a bool key wants True/False (not "yes"), a dict key a mapping.
    (The command line follows OmegaConf's conversions: ``key=yes`` is true there.)"""
    if isinstance(values, DictConfig):
        return
    hints = {f.name: str(f.type) for f in dataclasses.fields(schema)}
    for key, value in values.items():
        hint = hints.get(key, "")
        if hint == "bool" and not isinstance(value, bool):
            raise ConfigError(f"{prefix}.{key} must be true or false, got {value!r}")
        if hint.startswith("Dict") and value is not None and not isinstance(value, (Mapping, DictConfig)):
            raise ConfigError(f"{prefix}.{key} must be a mapping, got {value!r}")


def run_config_from_dict(values: Mapping, schemas: Mapping[str, str] | None = None) -> RunConfig:
    """Rebuild a checkpoint's :class:`RunConfig` from its plain dict (and its schema names)."""
    values = dict(values)
    algo, env = dict(values.pop("algorithm")), dict(values.pop("env"))
    if algo.pop("norm", False):  # PQN checkpoints from before model/normalised: algorithm.norm forced these on
        values["model"] = {**values.get("model", {}), "layer_norm": True, "input_norm": "layer"}
    model = dict(values.get("model", {}))
    if isinstance(model.get("input_norm"), bool):  # checkpoints from before input_norm named its kind
        model["input_norm"] = "layer" if model["input_norm"] else None
        values["model"] = model
    if "input_layer" in model:  # checkpoints from before model.input_layers: one input layer or none
        model["input_layers"] = int(bool(model.pop("input_layer")))
        values["model"] = model
    algo_schema = (schemas or {}).get("algorithm")
    if algo_schema is None:  # older checkpoints: the preset of the same name
        algo_schema = schema_name(compose_config(f"algorithm={algo['name']}").algorithm, "algorithm")
    if algo_schema not in ALGORITHM_SCHEMAS:
        raise ConfigError(f"unknown algorithm schema {algo_schema!r}; known: {', '.join(ALGORITHM_SCHEMAS)}")
    run = structured_from(RunConfig, {**values, "algorithm": None, "env": None}, "config")
    run.algorithm = structured_from(ALGORITHM_SCHEMAS[algo_schema], algo, "algorithm")
    run.env = structured_from(env_schema(env.get("family"), env.get("task")), env, "env")
    validate(run)
    return run


def as_config(cfg: Any, schema: type, prefix: str) -> Any:
    """A checked ``schema`` instance from an instance of it (or of a subclass) or a plain mapping.

    >>> from marl_torchrl.config.run import ModelConfig
    >>> as_config({"type": "mlp"}, ModelConfig, "model").type
    'mlp'
    """
    if isinstance(cfg, schema):
        validate(cfg, prefix)
        return cfg
    if dataclasses.is_dataclass(cfg) or not hasattr(cfg, "keys"):
        raise ConfigError(f"{prefix} must be a {schema.__name__} or a mapping, got {type(cfg).__name__}")
    obj = structured_from(schema, cfg, prefix)
    validate(obj, prefix)
    return obj
