"""Seeding and partial resets for envs that step ``E`` copies of a Python env in a loop (LBF, PettingZoo).

:class:`LoopedCopies` holds the one rule both follow: ``set_seed(s)`` makes copy ``i`` reset with seed
``1000 * s + i`` the next time it is reset (without ``set_seed``: seed ``i``); after that first reset each
copy continues its own random stream (seed None). A subclass calls :meth:`copies_to_reset` in its
``_reset`` and resets the copies it yields.

>>> import torch
>>> from tensordict import TensorDict
>>> class Three(LoopedCopies):  # three copies; stepping left out
...     _reset = _step = None
...     def __init__(self):
...         super().__init__(batch_size=torch.Size([3]))
>>> env = Three()
>>> _ = env.set_seed(2)
>>> list(env.copies_to_reset(None)), list(env.copies_to_reset(TensorDict({"_reset": torch.tensor([[False], [True], [False]])}, [3])))
([(0, 2000), (1, 2001), (2, 2002)], [(1, None)])
"""
from __future__ import annotations

from typing import Iterator

from tensordict import TensorDictBase
from torchrl.envs import EnvBase


class LoopedCopies(EnvBase):
    """An ``EnvBase`` over copies stepped in a loop: which copies to reset, and with which seed."""

    _seed: int | None = 0

    def copies_to_reset(self, tensordict: TensorDictBase | None) -> Iterator[tuple[int, int | None]]:
        """``(copy index, seed or None)`` for every copy the ``"_reset"`` mask (or a full reset) names."""
        which = range(self.batch_size.numel())
        if tensordict is not None and "_reset" in tensordict.keys():
            which = tensordict.get("_reset").reshape(-1).nonzero().flatten().tolist()
        seed, self._seed = self._seed, None  # each copy is seeded once; later resets continue its stream
        return ((i, None if seed is None else seed + i) for i in which)

    def _set_seed(self, seed: int | None) -> None:
        self._seed = 0 if seed is None else int(seed) * 1000
