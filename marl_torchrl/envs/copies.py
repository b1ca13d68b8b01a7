"""Seeding and partial resets for envs that step ``E`` copies of a Python env in a loop (LBF, PettingZoo).

:class:`LoopedCopies` holds the one rule both follow: ``set_seed(s)`` makes copy ``i`` reset with seed
``1000 * s + i`` the next time it is reset (without ``set_seed``: seed ``i``); after that first reset each
copy continues its own random stream (seed None). A subclass keeps its copies in ``envs`` and calls
:meth:`copies_to_reset` in its ``_reset``, resetting the copies it yields.

>>> import torch
>>> from tensordict import TensorDict
>>> class Three(LoopedCopies):  # three copies; stepping left out
...     _reset = _step = None
...     def __init__(self, n=3):
...         super().__init__(batch_size=torch.Size([n]))
...         self.envs = [object() for _ in range(n)]
>>> env = Three()
>>> _ = env.set_seed(2)
>>> list(env.copies_to_reset(None)), list(env.copies_to_reset(TensorDict({"_reset": torch.tensor([[False], [True], [False]])}, [3])))
([(0, 2000), (1, 2001), (2, 2002)], [(1, None)])

Seed blocks (``num_seeds=K``, :func:`~marl_torchrl.envs.seed_blocks.seed_block_env`): an env of ``K x E``
copies whose :meth:`~LoopedCopies.reset_blocks_from` is given the K seeds' own E-copy envs (*sources*,
never stepped or reset themselves) takes their copies over: block ``k`` (copies ``k * E ... (k + 1) * E - 1``)
*is* seed ``k``'s E copies, with their random streams and their pending ``set_seed`` seed, which block ``k``
consumes at its first reset that names one of its copies, as seed ``k``'s env does at its own first reset.
So block ``k`` resets, auto-resets and steps as seed ``k``'s env alone, whatever the other blocks do. Exact
as long as the copies draw only from their own generators (gymnasium's and PettingZoo's ``np_random``, as
LBF and MPE do): draws from numpy's or Python's global generator (e.g. MPE's optional ``u_noise``) are not
switched to seed ``k``'s stream (``rng`` is not used; switching it per step would cost more than a step).

>>> big, sources = Three(4), [Three(2), Three(2)]
>>> _ = sources[1].set_seed(5)
>>> big.reset_blocks_from(sources, rng=None)
>>> big.envs[2:] == sources[1].envs                                      # block 1 is seed 1's copies
True
>>> list(big.copies_to_reset(TensorDict({"_reset": torch.tensor([[True], [False], [False], [True]])}, [4])))
[(0, 0), (3, 5001)]
>>> list(big.copies_to_reset(None))                                      # each block's seed is used once
[(0, None), (1, None), (2, None), (3, None)]
"""
from __future__ import annotations

from typing import Callable, Iterator, Sequence

from tensordict import TensorDictBase
from torchrl.envs import EnvBase


class LoopedCopies(EnvBase):
    """An ``EnvBase`` over copies (``envs``) stepped in a loop: which copies to reset, with which seed, and
    K seeds' copies held as blocks (see the module docstring, which has the examples)."""

    _pending: list | None = None  # each block's seed for its first reset (one block but for reset_blocks_from); None: [0]
    supports_seed_blocks = True  # K seeds' envs as one env (num_seeds=K): see reset_blocks_from

    def copies_to_reset(self, tensordict: TensorDictBase | None) -> Iterator[tuple[int, int | None]]:
        """``(copy index, seed or None)`` for every copy the ``"_reset"`` mask (or a full reset) names.

        An env is one block of copies unless :meth:`reset_blocks_from` made it K: a block's pending seed is
        used at its first reset that names one of its copies (copy ``i`` of the block gets ``seed + i``),
        then the block's copies continue their own streams (None)."""
        which = range(self.batch_size.numel())
        if tensordict is not None and "_reset" in tensordict.keys():
            which = tensordict.get("_reset").reshape(-1).nonzero().flatten().tolist()
        if self._pending is None:
            self._pending = [0]
        e, seeds = self.batch_size.numel() // len(self._pending), list(self._pending)
        for k in {i // e for i in which}:  # a block with no copy to reset is not reset: its seed waits
            self._pending[k] = None
        return ((i, None if seeds[i // e] is None else seeds[i // e] + i % e) for i in which)

    def _set_seed(self, seed: int | None) -> None:
        self._pending = [0 if seed is None else int(seed) * 1000]  # a K-block env seeded becomes one block

    def reset_blocks_from(self, sources: Sequence[LoopedCopies], rng: Callable | None) -> None:
        """Take over ``sources``' copies (K seeds' E-copy envs of this class): block ``k`` is
        ``sources[k]``'s copies, with their streams and pending seed (``rng``: unused, see the module docstring)."""
        from marl_torchrl.envs.seed_blocks import block_size

        block_size(self, sources)
        if any(type(s) is not type(self) for s in sources):
            raise ValueError(f"every seed's env must be a {type(self).__name__}, as the big env is")
        self.envs = [copy for s in sources for copy in s.envs]
        self._pending = [0 if s._pending is None else s._pending[0] for s in sources]
