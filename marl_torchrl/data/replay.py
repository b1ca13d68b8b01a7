"""Replay of whole sequences on a TorchRL ``LazyTensorStorage``.

Each stored item is one sequence from :class:`~marl_torchrl.data.sequences.SequenceBuilder` (time is
inside the item), so a sample is a batch of many independent sequences ``[B, L + 1, ...]``, not one long
chunk. The storage lives on ``device`` (``"cuda"`` keeps replay and training on the GPU).

>>> import torch
>>> from tensordict import TensorDict
>>> rb = make_sequence_replay(capacity=100, batch_size=4)
>>> _ = rb.extend(TensorDict({"mask": torch.ones(10, 6, 1, dtype=torch.bool)}, [10]))
>>> len(rb), rb.sample()["mask"].shape
(10, torch.Size([4, 6, 1]))
"""
from __future__ import annotations

from torchrl.data import LazyTensorStorage, TensorDictReplayBuffer
from torchrl.data.replay_buffers.samplers import RandomSampler


def make_sequence_replay(capacity: int, batch_size: int, device="cpu") -> TensorDictReplayBuffer:
    """A FIFO buffer of ``capacity`` sequences sampling ``batch_size`` of them uniformly."""
    if capacity < batch_size:
        raise ValueError(f"replay capacity ({capacity}) is smaller than the batch size ({batch_size})")
    return TensorDictReplayBuffer(
        storage=LazyTensorStorage(capacity, device=device),
        sampler=RandomSampler(),
        batch_size=batch_size,
    )
