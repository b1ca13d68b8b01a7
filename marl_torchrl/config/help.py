"""``marl-train --help``: every key of the composed config with its value and its one line of help.

>>> text = help_text("algorithm=vdn")
>>> "algorithm.lr=0.0005" in text and "learning rate" in text
True
"""
from __future__ import annotations

import dataclasses
import json
from typing import Any

from marl_torchrl.config.fields import field_help
from marl_torchrl.config.store import CONFIG_DIR, compose_config, group_options

USAGE = """marl-train [key=value ...]   (python -m marl_torchrl.train is the same app)

Groups:
  algorithm=<{algorithms}>
  env=<{envs}>

Keys, with the values this command line would run with (override any as key=value):
"""
FOOTER = """
Hydra: hydra.run.dir=<dir> sets the run directory; --cfg job prints the composed config; -m runs sweeps;
--hydra-help lists Hydra's own flags."""


def _lines(cfg: Any, prefix: str) -> list[str]:
    out, helps = [], field_help(type(cfg))
    for f in dataclasses.fields(cfg):
        value, key = getattr(cfg, f.name), f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value):
            out += _lines(value, f"{key}.")
        else:
            note = f"    # {helps[f.name]}" if helps[f.name] else ""
            out.append(f"  {key}={json.dumps(value)}{note}")
    return out


def help_text(*overrides: str) -> str:
    """The help for ``marl-train <overrides> --help`` (the chosen algorithm's and env's own keys)."""
    cfg = compose_config(*overrides)
    head = USAGE.format(algorithms="|".join(group_options("algorithm", CONFIG_DIR)),
                        envs="|".join(group_options("env", CONFIG_DIR)))
    return head + "\n".join(_lines(cfg, "")) + FOOTER
