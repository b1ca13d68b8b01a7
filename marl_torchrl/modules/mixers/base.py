"""What every mixer of this package shares: the state batch check, the inputs a mixer may ask for, and
torchrl's constructor keywords.

**Inputs.** A mixer always receives the agents' chosen Q-values ``[*B, A, 1]`` and, if ``needs_state``,
the state ``[*B, S]``, positionally (torchrl's ``Mixer`` convention). A mixer that needs more declares
it in the class attribute ``extra_inputs``, with names from :data:`MIXER_INPUTS`; the losses pass
exactly those, as keyword arguments (``mix_values`` in :mod:`marl_torchrl.objectives.sequence_ops`), and
refuse at construction, with a one-line ``ConfigError``, a mixer asking for an input they cannot give.

**Constructor keywords.** :func:`resolve_state_dim` lets a mixer take torchrl's ``state_shape`` (an int,
tuple or ``torch.Size`` of a flat state) beside our ``state_dim``, so ``torchrl.modules.QMixer(
state_shape=(S,), mixing_embed_dim=32, n_agents=A, device="cpu")`` becomes ours by changing the import.

:class:`StateMixer` checks that the state's batch dimensions equal the agent values' (a transposed or
misaligned state would otherwise broadcast silently); subclasses write only ``mix(q, state)``.

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

from typing import Any

import torch
from torchrl.modules.models.multiagent import Mixer

from marl_torchrl.registry import ConfigError

#: The inputs a mixer may request in ``extra_inputs`` (beside the chosen Q-values and the state), each
#: aligned with the chosen Q-values' batch dims ``[*B]``:
#:
#: - ``"actions"``: the chosen joint action as indices ``[*B, A, 1]`` (``[*B, A]`` is accepted too);
#: - ``"action_values"``: every action's Q-value ``[*B, A, n]``;
#: - ``"action_mask"``: available actions ``[*B, A, n]`` (bool), or None when the env has no masks;
#: - ``"observations"``: the agents' observations ``[*B, A, F]``.
MIXER_INPUTS = ("actions", "action_values", "action_mask", "observations")


def requested_inputs(mixer: Any) -> tuple[str, ...]:
    """The extra inputs ``mixer`` declares (``()`` for torchrl's mixers and ours without extras).

    >>> from torchrl.modules.models.multiagent import VDNMixer
    >>> requested_inputs(VDNMixer(2, device="cpu")), requested_inputs(None)
    ((), ())
    """
    names = tuple(getattr(mixer, "extra_inputs", ()))
    unknown = [n for n in names if n not in MIXER_INPUTS]
    if unknown:
        raise ConfigError(f"mixer {type(mixer).__name__} asks for unknown input(s) {', '.join(unknown)}; "
                          f"known: {', '.join(MIXER_INPUTS)}")
    return names


def resolve_state_dim(mixer: str, state_dim: int | None, state_shape: Any = None) -> int:
    """The flat state size from our ``state_dim`` and/or torchrl's ``state_shape``; one-line errors.

    >>> resolve_state_dim("qmix", 5), resolve_state_dim("qmix", None, (5,)), resolve_state_dim("qmix", 5, torch.Size([5]))
    (5, 5, 5)
    >>> resolve_state_dim("qmix", 4, 5)
    Traceback (most recent call last):
    ...
    marl_torchrl.registry.ConfigError: qmix mixer got state_dim=4 but state_shape=(5,); give one of them
    """
    shape = None
    if state_shape is not None:
        shape = (int(state_shape),) if isinstance(state_shape, int) else tuple(int(s) for s in state_shape)
        if len(shape) != 1:
            raise ConfigError(f"{mixer} mixer takes a flat state only, got state_shape={shape}; flatten it first")
    if state_dim is None:
        if shape is None:
            raise ConfigError(f"{mixer} mixer needs state_dim (or torchrl's state_shape)")
        return shape[0]
    if shape is not None and shape[0] != int(state_dim):
        raise ConfigError(f"{mixer} mixer got state_dim={state_dim} but state_shape={shape}; give one of them")
    return int(state_dim)


class StateMixer(Mixer):
    """``Mixer`` whose ``forward(q [*B, A, 1], state [*B, S])`` insists on equal batch dims ``*B``.

    ``extra_inputs`` (default none) names what else the mixer needs, from :data:`MIXER_INPUTS`.
    """

    extra_inputs: tuple[str, ...] = ()

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
