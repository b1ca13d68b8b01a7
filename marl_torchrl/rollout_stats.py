"""Episode statistics from collected data: finished episodes' team returns and lengths.

>>> import torch
>>> from tensordict import TensorDict
>>> done = torch.tensor([[[False], [True]], [[False], [False]]])
>>> td = TensorDict({("next", "done"): done,
...                  ("next", "episode_reward"): torch.tensor([[[1.0], [3.0]], [[0.5], [0.7]]]),
...                  ("next", "step_count"): torch.tensor([[[1], [2]], [[1], [2]]])}, [2, 2])
>>> finished_episodes(td)
(tensor([3.]), tensor([2.]))
"""
from __future__ import annotations

import torch
from tensordict import TensorDictBase

from marl_torchrl import keys


def finished_episodes(td: TensorDictBase) -> tuple[torch.Tensor, torch.Tensor]:
    """Returns and lengths of the episodes that end inside ``td`` (any batch shape)."""
    done = td.get(("next", keys.DONE)).squeeze(-1)
    returns = td.get(("next", keys.EPISODE_REWARD)).squeeze(-1)[done].float()
    steps = td.get(("next", keys.STEP_COUNT), None)
    lengths = steps.squeeze(-1)[done].float() if steps is not None else torch.full_like(returns, float("nan"))
    return returns.cpu(), lengths.cpu()


def finished_flags(td: TensorDictBase, key: str) -> torch.Tensor | None:
    """A flag or value the env sets on an episode's last step (e.g. ``"battle_won"``, GridWorld's
    ``"items_collected"``), one value per episode that ends inside ``td``; None when the env has no such key.

    >>> import torch
    >>> from tensordict import TensorDict
    >>> td = TensorDict({("next", "done"): torch.tensor([[True], [False], [True]]),
    ...                  ("next", "battle_won"): torch.tensor([[True], [False], [False]])}, [3])
    >>> finished_flags(td, "battle_won")
    tensor([1., 0.])
    """
    flag = td.get(("next", key), None)
    if flag is None:
        return None
    done = td.get(("next", keys.DONE)).squeeze(-1)
    return flag.squeeze(-1)[done].float().cpu()


def _first_done(td: TensorDictBase) -> tuple[torch.Tensor, torch.Tensor]:
    """For an ``[E, T]`` rollout: row indices and each env's first done step (T-1 if none)."""
    done = td.get(("next", keys.DONE)).squeeze(-1).clone()  # [E, T]
    done[:, -1] = True  # an episode still running at the end counts as cut there
    return torch.arange(done.shape[0], device=done.device), done.float().argmax(dim=1)


def first_episodes(td: TensorDictBase) -> tuple[torch.Tensor, torch.Tensor]:
    """For an ``[E, T]`` rollout: each env's first episode return and length (unfinished ones at T).

    >>> import torch
    >>> from tensordict import TensorDict
    >>> done = torch.tensor([[[False], [True], [True]]])
    >>> td = TensorDict({("next", "done"): done,
    ...                  ("next", "episode_reward"): torch.tensor([[[1.0], [2.0], [9.0]]]),
    ...                  ("next", "step_count"): torch.tensor([[[1], [2], [1]]])}, [1, 3])
    >>> first_episodes(td)
    (tensor([2.]), tensor([2.]))
    """
    rows, first = _first_done(td)
    returns = td.get(("next", keys.EPISODE_REWARD)).squeeze(-1)[rows, first].float()
    steps = td.get(("next", keys.STEP_COUNT), None)
    lengths = steps.squeeze(-1)[rows, first].float() if steps is not None else (first + 1).float()
    return returns.cpu(), lengths.cpu()


def first_episode_flags(td: TensorDictBase, key: str) -> torch.Tensor | None:
    """For an ``[E, T]`` rollout: a last-step flag (e.g. ``"battle_won"``) of each env's first episode;
    None when the env has no such key. A later episode's flag does not count.

    >>> import torch
    >>> from tensordict import TensorDict
    >>> td = TensorDict({("next", "done"): torch.tensor([[[True], [True]], [[False], [True]]]),
    ...                  ("next", "battle_won"): torch.tensor([[[False], [True]], [[False], [True]]])}, [2, 2])
    >>> first_episode_flags(td, "battle_won")
    tensor([0., 1.])
    """
    flag = td.get(("next", key), None)
    if flag is None:
        return None
    rows, first = _first_done(td)
    return flag.squeeze(-1)[rows, first].float().cpu()
