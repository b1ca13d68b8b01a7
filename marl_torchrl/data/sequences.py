"""Cut collector batches into fixed-length sequences for recurrent replay.

A collector hands over ``[E, T]`` batches in which episodes run on across batches and every step holds
both ``obs`` and ``("next", obs)``. :class:`SequenceBuilder` keeps one open sequence per env and emits
sequences of ``seq_len`` transitions that never cross an episode boundary. Each observation is stored
once: a sequence holds ``seq_len + 1`` observation slots, slot ``t`` for the observation at transition
``t`` and the slot after the last transition for the next observation it bootstraps from (the final
observation of a truncated episode, or the first of the sequence that continues the episode).

Output (one tensordict, batch ``[K]``, time inside every entry, ``L = seq_len``):

- observation-like keys (``obs``, ``state``, ``action_mask``): ``[K, L + 1, ...]``;
- ``action``, ``reward``, ``terminated``, ``is_init``: ``[K, L + 1, ...]`` (the last slot is padding);
- ``mask`` ``[K, L + 1, 1]``: True at real transitions, False at padding;
- the hidden state at the sequence start, ``hidden_key`` ``[K, A, H]`` (zero at an episode start; the
  acting policy's stored state for a sequence that continues an episode).

If ``seq_len`` is at least the longest episode, every sequence is one whole episode.

>>> import torch
>>> from tensordict import TensorDict
>>> E, T, A = 2, 5, 3
>>> done = torch.zeros(E, T, 1, dtype=torch.bool); done[0, 2] = True
>>> batch = TensorDict({
...     ("agents", "observation"): torch.randn(E, T, A, 4), "state": torch.randn(E, T, 6),
...     ("agents", "action"): torch.zeros(E, T, A, dtype=torch.long),
...     "is_init": torch.zeros(E, T, 1, dtype=torch.bool),
...     ("next", "agents", "observation"): torch.randn(E, T, A, 4), ("next", "state"): torch.randn(E, T, 6),
...     ("next", "reward"): torch.ones(E, T, 1), ("next", "done"): done, ("next", "terminated"): done,
... }, [E, T])
>>> builder = SequenceBuilder(seq_len=4, hidden_key=None)
>>> out = builder.add(batch)      # env 0 ends an episode at step 2, env 1 fills a sequence at step 3
>>> out.batch_size, out["agents", "observation"].shape, out["mask"].sum(dim=(1, 2)).tolist()
(torch.Size([2]), torch.Size([2, 5, 3, 4]), [3, 4])
"""
from __future__ import annotations

import torch
from tensordict import TensorDict, TensorDictBase

from marl_torchrl import keys


class SequenceBuilder:
    """Turns ``[E, T]`` collector batches into ``[K]`` sequences of ``seq_len`` transitions.

    Args:
        seq_len: transitions per sequence (L); a sequence also ends where an episode ends.
        obs_keys: keys present at the root and under ``"next"`` (each stored once); absent ones are
            skipped (e.g. ``action_mask`` for envs without masks).
        hidden_key: the policy's hidden state at the root of each step, or None (MLP agents).
        extra_keys: further root keys to keep per step (e.g. the acting policy's ``action_value``,
            to check the recurrent contract or to log).

    >>> SequenceBuilder(seq_len=8).seq_len
    8
    """

    def __init__(
        self,
        seq_len: int,
        *,
        obs_keys=(keys.OBS, keys.STATE, keys.ACTION_MASK),
        action_key=keys.ACTION,
        reward_key=keys.REWARD,
        terminated_key=keys.TERMINATED,
        done_key=keys.DONE,
        is_init_key=keys.IS_INIT,
        hidden_key=keys.HIDDEN,
        extra_keys=(),
    ):
        if seq_len < 1:
            raise ValueError(f"seq_len must be >= 1, got {seq_len}")
        self.seq_len = seq_len
        self.obs_keys = tuple(obs_keys)
        self.action_key, self.reward_key = action_key, reward_key
        self.terminated_key, self.done_key = terminated_key, done_key
        self.is_init_key, self.hidden_key = is_init_key, hidden_key
        self.extra_keys = tuple(extra_keys)
        self._buf: dict | None = None  # key -> [E, L + 1, ...] open sequences
        self._pos: torch.Tensor | None = None  # [E] transitions written so far

    def _sources(self, batch: TensorDictBase):
        """Where each stored entry comes from: root observations, their ``next`` copies, per-step keys."""
        root = {k: batch.get(k) for k in self._present}
        nxt = {k: batch.get(("next", *keys.as_tuple(k))) for k in self._present}
        step = {
            self.action_key: batch.get(self.action_key),
            self.reward_key: batch.get(("next", *keys.as_tuple(self.reward_key))),
            self.terminated_key: batch.get(("next", *keys.as_tuple(self.terminated_key))),
            self.is_init_key: batch.get(self.is_init_key),
            **{k: batch.get(k) for k in self.extra_keys},
        }
        return root, nxt, step

    def _open(self, batch: TensorDictBase) -> None:
        e, slots = batch.shape[0], self.seq_len + 1
        self._present = [k for k in self.obs_keys if batch.get(k, None) is not None]
        root, _, step = self._sources(batch)
        self._buf = {
            k: torch.zeros(e, slots, *v.shape[2:], dtype=v.dtype, device=v.device)
            for k, v in {**root, **step}.items()
        }
        self._mask = torch.zeros(e, slots, 1, dtype=torch.bool, device=batch.device)
        self._pos = torch.zeros(e, dtype=torch.long, device=batch.device)
        if self.hidden_key is not None:
            h = batch.get(self.hidden_key)
            self._h0 = torch.zeros(e, *h.shape[2:], dtype=h.dtype, device=h.device)

    def add(self, batch: TensorDictBase) -> TensorDictBase | None:
        """Consume one ``[E, T]`` batch; return the sequences it completed (batch ``[K]``) or None."""
        if batch.ndim != 2:
            raise ValueError(f"expected a collector batch [envs, time], got batch_size {tuple(batch.shape)}")
        if self._buf is None:
            self._open(batch)
        e, t_len = batch.shape
        rows = torch.arange(e, device=self._pos.device)
        root, nxt, step = self._sources(batch)
        done = batch.get(("next", *keys.as_tuple(self.done_key))).reshape(e, t_len)
        hidden = batch.get(self.hidden_key) if self.hidden_key is not None else None
        is_init = step[self.is_init_key].reshape(e, t_len)
        out = []
        for t in range(t_len):
            pos = self._pos
            if hidden is not None:
                start = pos == 0
                h = torch.where(is_init[:, t].reshape(-1, *[1] * (hidden.ndim - 2)), 0.0, hidden[:, t])
                self._h0[start] = h[start]
            for k, v in root.items():
                self._buf[k][rows, pos] = v[:, t]
            for k, v in step.items():
                self._buf[k][rows, pos] = v[:, t]
            self._mask[rows, pos] = True
            self._pos = pos = pos + 1
            end = done[:, t] | (pos == self.seq_len)
            if end.any():
                idx = end.nonzero().squeeze(-1)
                for k, v in nxt.items():
                    self._buf[k][idx, pos[idx]] = v[idx, t]
                out.append(self._emit(idx))
        return torch.cat(out) if out else None

    def _emit(self, idx: torch.Tensor) -> TensorDictBase:
        data = {k: v[idx].clone() for k, v in self._buf.items()}
        data[keys.MASK] = self._mask[idx].clone()
        if self.hidden_key is not None:
            data[self.hidden_key] = self._h0[idx].clone()
        for v in self._buf.values():
            v[idx] = 0
        self._mask[idx] = False
        self._pos[idx] = 0
        return TensorDict(data, batch_size=[idx.numel()], device=self._mask.device)

