"""Batched partial resets for VMAS.

torchrl's ``VmasWrapper`` resets finished envs one at a time (``reset_at(i)`` in a Python loop), and a
VMAS ``reset_at`` costs about as much as a vectorised reset of the whole batch: with 256 envs of
``balance`` and a random policy, resets took 45% of the collection time. :class:`BatchedResetVmasWrapper`
resets several envs at once: it snapshots every batch-indexed tensor of the simulator (the environment,
the world, each entity, its state and action, and the scenario: attributes whose first dim is the number
of envs), runs one vectorised ``reset()``, and writes the snapshot back into the envs that were not to be
reset. Those continue exactly as before (tested on every scenario we ship configs for); the reset envs get
fresh starts from VMAS's own random stream (other draws than ``reset_at`` would make, same distribution).

>>> import vmas
>>> raw = vmas.make_env("balance", num_envs=4, device="cpu", continuous_actions=False, seed=0)
>>> env = BatchedResetVmasWrapper(raw, categorical_actions=True)
>>> td = env.rand_step(env.reset())["next"]
>>> _ = env.reset(td.set("_reset", torch.tensor([[True], [False], [True], [False]])))
>>> env._env.steps.int().tolist()
[0, 1, 0, 1]
"""
from __future__ import annotations

import torch
from tensordict import TensorDict, TensorDictBase
from torchrl.envs.libs.vmas import VmasWrapper

MIN_BATCHED = 2  # resetting fewer envs than this goes through VMAS's reset_at


def _holders(env) -> list:
    """Objects that may hold per-env tensors: the VMAS env, its world, scenario, entities and their parts."""
    objs = [env, env.world, env.scenario]
    for entity in env.world.entities:
        objs += [entity, entity.state]
        if getattr(entity, "action", None) is not None:
            objs.append(entity.action)
    return objs


def snapshot(env) -> list[tuple[object, str, torch.Tensor]]:
    """``(holder, attribute, clone)`` of every tensor attribute whose first dim is ``env.num_envs``."""
    n = env.num_envs
    out = []
    for obj in _holders(env):
        for name, value in vars(obj).items():
            if isinstance(value, torch.Tensor) and value.dim() >= 1 and value.shape[0] == n:
                out.append((obj, name, value.clone()))
    return out


def restore(saved: list, keep: torch.Tensor) -> None:
    """Write the saved rows back where ``keep`` ``[E]`` is True (attributes whose shape is unchanged)."""
    for obj, name, old in saved:
        new = getattr(obj, name, None)
        if isinstance(new, torch.Tensor) and new.shape == old.shape:
            mask = keep.view(-1, *([1] * (old.dim() - 1)))
            setattr(obj, name, torch.where(mask, old, new))


class BatchedResetVmasWrapper(VmasWrapper):
    """torchrl's ``VmasWrapper`` whose partial resets of several envs run as one vectorised reset.

    Built like ``VmasWrapper`` (see the module docstring for an example).
    """

    def _reset(self, tensordict: TensorDictBase | None = None, **kwargs) -> TensorDictBase:
        if tensordict is not None and "_reset" in tensordict.keys():
            which = tensordict.get("_reset").view(-1).to(torch.bool)
            if MIN_BATCHED <= int(which.sum()) < which.numel():
                saved = snapshot(self._env)
                self._env.reset(return_observations=False)
                restore(saved, ~which.to(self._env.device))
                # the world now holds every env's wanted state: VmasWrapper._reset with no env to
                # reset only reads it
                tensordict = TensorDict({"_reset": torch.zeros_like(tensordict.get("_reset"))},
                                        batch_size=tensordict.batch_size, device=tensordict.device)
        return super()._reset(tensordict, **kwargs)
