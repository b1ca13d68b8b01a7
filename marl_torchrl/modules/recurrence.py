"""Multi-agent recurrence for acting: the agent network as a TensorDictModule, and its primer.

:class:`AgentNetModule` runs a :class:`~marl_torchrl.modules.agents.SharedAgentNet` one step at a time
inside a collector. It reads the observation, the hidden state and ``is_init``, resets the hidden
state to zero where an episode starts, and writes the output plus ``("next", hidden)`` so that the
collector carries the state to the next step. :func:`hidden_state_primer` adds the hidden state (shape
``[A, H]`` under the group, zero on reset) to an environment's specs; torchrl's own
``GRUModule.make_tensordict_primer`` has no agent dimension.

>>> import torch
>>> from tensordict import TensorDict
>>> from marl_torchrl.modules.agents import SharedAgentNet
>>> net = SharedAgentNet(obs_dim=3, n_agents=2, out_dim=4, hidden_dim=8)
>>> module = AgentNetModule(net)
>>> td = TensorDict({("agents", "observation"): torch.randn(5, 2, 3),
...                  ("agents", "rnn_hidden"): torch.randn(5, 2, 8),
...                  "is_init": torch.ones(5, 1, dtype=torch.bool)}, [5])
>>> out = module(td)
>>> out["agents", "action_value"].shape, out["next", "agents", "rnn_hidden"].shape
(torch.Size([5, 2, 4]), torch.Size([5, 2, 8]))
"""
from __future__ import annotations

import torch
from tensordict import TensorDictBase
from tensordict.nn import TensorDictModuleBase
from torchrl.data import Composite, Unbounded
from torchrl.envs.transforms import TensorDictPrimer

from marl_torchrl import keys
from marl_torchrl.modules.agents import SharedAgentNet


class AgentNetModule(TensorDictModuleBase):
    """Step-mode TensorDictModule around a shared agent network (MLP or GRU).

    Reads ``obs_key`` (and, for a GRU, ``hidden_key`` and ``is_init``); writes ``out_key`` and, for a
    GRU, ``("next", hidden_key)``. The hidden state is zeroed where ``is_init`` is True, so an episode
    always starts from h=0 whatever the tensordict carried.

    >>> from tensordict import TensorDict
    >>> net = SharedAgentNet(obs_dim=3, n_agents=2, out_dim=4, rnn=False)
    >>> AgentNetModule(net).in_keys
    [('agents', 'observation')]
    """

    def __init__(
        self,
        net: SharedAgentNet,
        *,
        obs_key=keys.OBS,
        out_key=keys.ACTION_VALUE,
        hidden_key=keys.HIDDEN,
        is_init_key=keys.IS_INIT,
    ):
        super().__init__()
        self.net = net
        self.obs_key, self.hidden_key, self.is_init_key = obs_key, hidden_key, is_init_key
        self.in_keys = [obs_key] + ([hidden_key, is_init_key] if net.rnn else [])
        self.out_keys = [out_key] + ([("next", *keys.as_tuple(hidden_key))] if net.rnn else [])

    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        obs = tensordict.get(self.obs_key)
        hidden = None
        if self.net.rnn:
            hidden = tensordict.get(self.hidden_key, None)
            if hidden is None:
                hidden = self.net.initial_hidden(*obs.shape[:-2], device=obs.device)
            is_init = tensordict.get(self.is_init_key, None)
            if is_init is not None:
                hidden = torch.where(is_init.reshape(*is_init.shape[:-1], 1, 1), 0.0, hidden)
        out, next_hidden = self.net(obs, hidden)
        tensordict.set(self.out_keys[0], out)
        if self.net.rnn:
            tensordict.set(self.out_keys[1], next_hidden)
        return tensordict


def hidden_state_primer(n_agents: int, hidden_dim: int, *, hidden_key=keys.HIDDEN) -> TensorDictPrimer:
    """A primer that puts a zero hidden state ``[*B, A, H]`` under ``hidden_key`` at every reset.

    >>> primer = hidden_state_primer(n_agents=2, hidden_dim=8)
    >>> primer.primers[("agents", "rnn_hidden")].shape
    torch.Size([2, 8])
    """
    *group, name = keys.as_tuple(hidden_key)
    spec: Composite | Unbounded = Unbounded(shape=(n_agents, hidden_dim))
    spec = Composite({name: spec}, shape=(n_agents,) if group else ())
    for level, g in enumerate(reversed(group)):  # the group's composite carries the agent dim
        spec = Composite({g: spec}, shape=() if level == len(group) - 1 else (n_agents,))
    return TensorDictPrimer(spec, default_value=0.0, expand_specs=True)
