"""A torchrl ``Mixer`` that also checks the state's batch dimensions, once, for every state mixer.

torchrl's ``Mixer.forward`` checks the agent and state feature dimensions; :class:`StateMixer` adds
that the state's batch dimensions equal the agent values' (a transposed or misaligned state would
otherwise broadcast silently). Subclasses write only ``mix(q, state)``.

>>> import torch
>>> class Mean(StateMixer):
...     def mix(self, q, state):
...         return q.mean(-2) + state.sum(-1, keepdim=True)
>>> mixer = Mean(n_agents=2, needs_state=True, state_shape=torch.Size([3]), device="cpu")
>>> mixer(torch.ones(4, 2, 1), torch.zeros(4, 3)).shape
torch.Size([4, 1])
>>> mixer(torch.ones(4, 2, 1), torch.zeros(5, 3))
Traceback (most recent call last):
...
ValueError: Mean: state batch dims (5,) do not match chosen_action_value batch dims (4,)
"""
from __future__ import annotations

import torch
from torchrl.modules.models.multiagent import Mixer


class StateMixer(Mixer):
    """``Mixer`` whose ``forward(q [*B, A, 1], state [*B, S])`` insists on equal batch dims ``*B``."""

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        if self.needs_state and len(inputs) == 2:
            q, state = inputs
            batch = q.shape[:-2]
            if state.shape[: state.dim() - len(self.state_shape)] != batch:
                raise ValueError(
                    f"{type(self).__name__}: state batch dims {tuple(state.shape[:-len(self.state_shape)])} "
                    f"do not match chosen_action_value batch dims {tuple(batch)}"
                )
        return super().forward(*inputs)
