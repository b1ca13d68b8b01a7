"""VDN: the team value is the sum of the agents' chosen-action values (Sunehag et al. 2017).

torchrl's :class:`~torchrl.modules.models.multiagent.VDNMixer` is exactly this, so it is re-exported
as is; this file adds the ``"vdn"`` builder to :data:`marl_torchrl.registry.MIXERS`.

>>> import torch
>>> from marl_torchrl.modules.mixers.vdn import VDNMixer, build_vdn
>>> mixer = build_vdn(n_agents=3, state_dim=5)
>>> mixer(torch.ones(4, 3, 1))
tensor([[3.],
        [3.],
        [3.],
        [3.]])
"""
from __future__ import annotations

from typing import Any

from torchrl.modules.models.multiagent import VDNMixer

from marl_torchrl.registry import MIXERS, check_known

__all__ = ["VDNMixer", "build_vdn"]


@MIXERS.register("vdn")
def build_vdn(n_agents: int, state_dim: int | None = None, *, device: Any = None, **unknown: Any) -> VDNMixer:
    """Build a :class:`VDNMixer`; ``state_dim`` is accepted for the common signature and ignored.

    The only option is ``device``; anything else is a :class:`~marl_torchrl.registry.ConfigError`.

    >>> build_vdn(2, 7).n_agents
    2
    >>> build_vdn(2, 7, mixing_embed_dim=8)
    Traceback (most recent call last):
    ...
    marl_torchrl.registry.ConfigError: unknown option(s) for mixer 'vdn': mixing_embed_dim; known: device
    """
    check_known(unknown, ["device"], "option(s) for mixer 'vdn'")
    return VDNMixer(n_agents=int(n_agents), device=device)
