"""Partial resets for VMAS from a pool of fresh starts.

torchrl's ``VmasWrapper`` resets finished envs one at a time (``reset_at(i)`` in a Python loop), and a
VMAS ``reset_at`` costs about as much as a vectorised reset of the whole batch. With many envs some env
finishes on most steps (``balance``'s package falls at any time), so resets took 45% of the collection
time at 256 envs. :class:`ResetPool` (used by :class:`~marl_torchrl.envs.vmas_wrapper.FastVmasWrapper`)
keeps a pool of fresh starts instead: it snapshots every batch-indexed tensor of the simulator (the
environment, the world, each entity, its state and action, and the scenario: attributes whose first dim
is the number of envs), runs one vectorised ``reset()``, keeps the E fresh rows as the pool and writes
the snapshot back. A partial reset then only copies the next unused pool rows into the envs to reset;
the pool is refilled once too few rows are left, so one vectorised reset serves up to E env resets. The
other envs are not touched and continue exactly as before (tested on every scenario we ship configs for); the reset envs get starts drawn by
VMAS's own reset, from its random stream (other draws than ``reset_at`` would make, same distribution).
A pool can also fill rows of another, larger env of the same scenario (``take(..., into=, offset=)``):
:mod:`~marl_torchrl.envs.vmas_blocks` resets each seed's block of a K-seed env from that seed's own env.
"""
from __future__ import annotations

from typing import Any, Callable

import torch

def _holders(env) -> list:
    """Objects that may hold per-env tensors: the VMAS env, its world, scenario, entities and their parts."""
    objs = [env, env.world, env.scenario]
    for entity in env.world.entities:
        objs += [entity, entity.state]
        if getattr(entity, "action", None) is not None:
            objs.append(entity.action)
    return objs


def snapshot(env) -> list[tuple[int, object, str, torch.Tensor]]:
    """``(holder position, holder, attribute, clone)`` of every tensor attribute whose first dim is
    ``env.num_envs`` (positions in the holder list, which is the same for every env of one scenario)."""
    n = env.num_envs
    out = []
    for pos, obj in enumerate(_holders(env)):
        for name, value in vars(obj).items():
            if isinstance(value, torch.Tensor) and value.dim() >= 1 and value.shape[0] == n:
                out.append((pos, obj, name, value.clone()))
    return out


def copy_rows(src, dst, offset: int) -> None:
    """Put envs ``offset ... offset + dst.num_envs - 1`` of VMAS env ``src`` (same scenario, more envs) into
    ``dst``: every per-env tensor of ``dst`` that ``src`` has too."""
    n, big = dst.num_envs, src.num_envs
    for obj, other in zip(_holders(dst), _holders(src)):
        for name, value in list(vars(obj).items()):
            cur = getattr(other, name, None)
            if (isinstance(value, torch.Tensor) and value.dim() >= 1 and value.shape[0] == n
                    and isinstance(cur, torch.Tensor) and cur.shape[0] == big and cur.shape[1:] == value.shape[1:]):
                setattr(obj, name, cur[offset:offset + n].clone())


class ResetPool:
    """Fresh VMAS starts, E at a time: ``take(env, which)`` resets the envs where ``which`` is True.

    ``capture(env)``, if given, is called right after each vectorised reset that fills the pool; its
    result is kept as ``fresh`` (e.g. the fresh starts' observations), and ``take`` returns which pool
    row each reset env got, so callers can read their reset outputs from it instead of recomputing them.

    >>> import vmas
    >>> raw = vmas.make_env("balance", num_envs=3, device="cpu", seed=0)
    >>> pool = ResetPool()
    >>> raw.steps += 5
    >>> envs, rows = pool.take(raw, torch.tensor([False, True, False]))
    >>> raw.steps.int().tolist(), envs.tolist(), rows.tolist(), pool.left
    ([5, 0, 5], [1], [0], 2)
    """

    def __init__(self, capture: Callable[[object], Any] | None = None):
        self.capture = capture
        self.rows: list[tuple[int, str, torch.Tensor]] = []
        self.fresh: Any = None
        self.left = 0

    def refill(self, env) -> None:
        """One vectorised reset: its E starts become the pool; the envs' own state is put back."""
        saved = snapshot(env)
        env.reset(return_observations=False)
        self.rows = [(pos, name, getattr(obj, name)) for pos, obj, name, _ in saved]
        self.fresh = self.capture(env) if self.capture is not None else None
        self.left = env.num_envs
        for _, obj, name, old in saved:
            setattr(obj, name, old)

    def take(self, env, which: torch.Tensor, *, into=None, offset: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """Copy fresh starts into the envs where ``which`` is True; returns ``(env indices, pool rows)``.

        The pool is refilled (from ``env``) first when fewer unused rows are left than envs to reset, so
        every env of one call gets a row of the same ``fresh``. With ``into`` (a VMAS env of the same
        scenario with more envs), the rows go into ``into``'s envs ``offset + index`` instead of ``env``'s.
        """
        idx = which.nonzero()[:, 0]
        n = len(idx)
        if n > self.left:
            self.refill(env)
        start = env.num_envs - self.left
        target = into if into is not None else env
        holders = _holders(target)
        for pos, name, fresh in self.rows:
            cur = getattr(holders[pos], name, None)
            if (isinstance(cur, torch.Tensor) and cur.shape[0] == target.num_envs
                    and cur.shape[1:] == fresh.shape[1:]):
                setattr(holders[pos], name, cur.index_put((idx + offset,), fresh[start:start + n]))
        self.left -= n
        return idx, torch.arange(start, start + n, device=idx.device)
