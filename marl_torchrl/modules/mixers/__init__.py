"""Value mixers: ``[*B, n_agents, 1]`` agent values (+ ``[*B, S]`` state) -> ``[*B, 1]`` team value.

Every mixer subclasses torchrl's :class:`~torchrl.modules.models.multiagent.Mixer`, so it works
inside torchrl's ``QMixerLoss`` and ours alike. Importing this package imports every module in it
(``pkgutil``), which registers their builders in :data:`marl_torchrl.registry.MIXERS` and exports their
mixer classes here: a new mixer is one new module, with no edit elsewhere. Each builder has the
signature ``build(n_agents, state_dim, **options) -> Mixer``.

>>> import torch
>>> from marl_torchrl.modules.mixers import make_mixer
>>> mixer = make_mixer("qmix", n_agents=3, state_dim=5, mixing_embed_dim=8)
>>> mixer(torch.randn(2, 3, 1), torch.randn(2, 5)).shape
torch.Size([2, 1])
"""
from __future__ import annotations

import importlib
import inspect
import pkgutil
from typing import Any

from torchrl.modules.models.multiagent import Mixer

from marl_torchrl.registry import MIXERS

__all__ = ["Mixer", "make_mixer"]

for _info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    _module = importlib.import_module(f"{__name__}.{_info.name}")
    for _name in getattr(_module, "__all__", ()):  # export the mixer classes each module lists in __all__
        _obj = getattr(_module, _name)
        if inspect.isclass(_obj) and issubclass(_obj, Mixer) and _name not in __all__:
            globals()[_name] = _obj
            __all__.append(_name)


def make_mixer(name: str, n_agents: int, state_dim: int, **options: Any) -> Mixer:
    """Build the mixer registered as ``name``; unknown names or options raise ``ConfigError``.

    >>> make_mixer("vdn", n_agents=4, state_dim=10)
    VDNMixer()
    >>> make_mixer("qmx", 4, 10)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    marl_torchrl.registry.ConfigError: unknown mixer 'qmx'; known: ...qmix...
    >>> make_mixer("qmix", 4, 10, embed=16)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    marl_torchrl.registry.ConfigError: unknown option(s) for mixer 'qmix': embed; known: device, ...
    """
    return MIXERS.get(name)(n_agents, state_dim, **options)
