"""Aggregate statistics over runs, numpy only (Agarwal et al. 2021, "Deep RL at the Edge of the
Statistical Precipice"): the interquartile mean, percentile bootstrap intervals, the stratified
bootstrap (runs resampled with replacement *within* each task) and the probability of improvement.

Definitions used here:

* **IQM** (:func:`iqm`): rliable's ``aggregate_iqm``, i.e. ``scipy.stats.trim_mean(x, 0.25)``: sort the
  ``n`` scores, drop ``floor(n/4)`` whole scores from each end, average the rest. When ``n`` is not a
  multiple of 4 that keeps more than the middle half (``n=3`` keeps all three, so IQM = mean there); the
  numbers stay comparable with every paper that reports rliable's IQM.
* **Probability of improvement** (:func:`prob_improvement`): ``P(X > Y)`` = mean over the shared tasks of
  ``U / (n m)``, ``U`` the Mann-Whitney count of pairs with ``x > y``, ties counting 1/2.
* **Intervals**: 95% percentile bootstrap (2.5 and 97.5 percentiles of the resampled statistic).

>>> round(iqm([1.0, 2.0, 4.0, 10.0, 100.0]), 6)
5.333333
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

__all__ = ["iqm_weights", "iqm", "percentile_ci", "stratified_bootstrap", "bootstrap_ci",
           "prob_improvement", "prob_improvement_ci", "wilson_ci"]

Stat = Callable[[np.ndarray], np.ndarray]


def iqm_weights(n: int) -> np.ndarray:
    """Weights of the sorted scores in the interquartile mean of ``n`` scores: 0 for the ``floor(n/4)``
    lowest and highest, 1 for the others (the IQM divides by their count).

    >>> iqm_weights(3).tolist()
    [1.0, 1.0, 1.0]
    >>> iqm_weights(5).tolist()
    [0.0, 1.0, 1.0, 1.0, 0.0]
    """
    if n < 1:
        raise ValueError("iqm of no scores")
    k = n // 4
    w = np.ones(n)
    w[:k] = 0.0
    w[n - k:] = 0.0
    return w


def iqm(scores: Sequence[float] | np.ndarray) -> np.ndarray | float:
    """Interquartile mean along the last axis (rliable's, see the module docstring).

    >>> iqm([1.0, 2.0, 3.0, 4.0])
    2.5
    >>> iqm([[0.0, 4.0, 8.0], [1.0, 1.0, 1.0]]).tolist()
    [4.0, 1.0]
    """
    x = np.sort(np.asarray(scores, dtype=float), axis=-1)
    w = iqm_weights(x.shape[-1])
    out = (x @ w) / w.sum()
    return float(out) if np.ndim(out) == 0 else out


def _mean(x: np.ndarray) -> np.ndarray:
    return np.mean(x, axis=-1)


def percentile_ci(samples: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """The central ``level`` percentile interval of bootstrap samples.

    >>> percentile_ci(np.arange(101.0))
    (2.5, 97.5)
    """
    a = round((1.0 - level) * 50.0, 10)
    lo, hi = np.percentile(np.asarray(samples, dtype=float), [a, 100.0 - a])
    return float(lo), float(hi)


def stratified_bootstrap(strata: Sequence[Sequence[float]], stat: Stat = _mean, reps: int = 2000,
                         seed: int | np.random.Generator = 0) -> np.ndarray:
    """``reps`` values of ``stat`` over the pooled scores, each stratum (task) resampled with replacement
    within itself. ``stat`` maps a ``(reps, N)`` array to ``(reps,)``.

    >>> stratified_bootstrap([[0.0, 0.0], [1.0, 1.0]], reps=5).tolist()   # never mixes tasks
    [0.5, 0.5, 0.5, 0.5, 0.5]
    """
    rng = np.random.default_rng(seed)
    parts = []
    for s in strata:
        s = np.asarray(s, dtype=float)
        parts.append(s[rng.integers(0, len(s), size=(reps, len(s)))])
    return np.asarray(stat(np.concatenate(parts, axis=1)), dtype=float)


def bootstrap_ci(strata: Sequence[Sequence[float]], stat: Stat = _mean, reps: int = 2000,
                 seed: int | np.random.Generator = 0, level: float = 0.95) -> tuple[float, float, float]:
    """``(point estimate, low, high)`` of ``stat`` over the pooled strata, stratified-bootstrap interval.

    >>> bootstrap_ci([[2.0, 2.0, 2.0]], stat=iqm)
    (2.0, 2.0, 2.0)
    """
    pooled = np.concatenate([np.asarray(s, dtype=float) for s in strata])[None, :]
    point = float(np.asarray(stat(pooled)).reshape(-1)[0])
    lo, hi = percentile_ci(stratified_bootstrap(strata, stat, reps, seed), level)
    return point, lo, hi


def _poi(xs: Sequence[np.ndarray], ys: Sequence[np.ndarray]) -> np.ndarray:
    """Mean over tasks of U/(n m); each x, y has shape (..., n) / (..., m)."""
    per_task = []
    for x, y in zip(xs, ys):
        a, b = x[..., :, None], y[..., None, :]
        per_task.append(np.mean((a > b) + 0.5 * (a == b), axis=(-2, -1)))
    return np.mean(per_task, axis=0)


def prob_improvement(x_by_task: Sequence[Sequence[float]], y_by_task: Sequence[Sequence[float]]) -> float:
    """``P(X > Y)``: the average over tasks (paired lists) of ``U / (n m)``, ties counting 1/2.

    >>> prob_improvement([[3.0, 4.0]], [[1.0, 3.0, 5.0]])   # (1 + .5 + 0 + 1 + 1 + 0) / 6
    0.5833333333333334
    """
    return float(_poi([np.asarray(x, float) for x in x_by_task], [np.asarray(y, float) for y in y_by_task]))


def prob_improvement_ci(x_by_task: Sequence[Sequence[float]], y_by_task: Sequence[Sequence[float]],
                        reps: int = 2000, seed: int | np.random.Generator = 0,
                        level: float = 0.95) -> tuple[float, float, float]:
    """``(P(X > Y), low, high)``; the interval resamples X's and Y's runs within each task.

    >>> prob_improvement_ci([[5.0, 6.0], [1.0]], [[1.0, 2.0], [0.0]])
    (1.0, 1.0, 1.0)
    """
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for x, y in zip(x_by_task, y_by_task):
        x, y = np.asarray(x, float), np.asarray(y, float)
        xs.append(x[rng.integers(0, len(x), size=(reps, len(x)))])
        ys.append(y[rng.integers(0, len(y), size=(reps, len(y)))])
    lo, hi = percentile_ci(_poi(xs, ys), level)
    return prob_improvement(x_by_task, y_by_task), lo, hi


def wilson_ci(successes: float, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95% Wilson score interval of a binomial proportion (a win rate over ``n`` episodes), kept inside
    ``[0, 1]`` and around ``successes / n`` exactly (no float error at 0 or 1).

    >>> [round(x, 3) for x in wilson_ci(120, 128)]
    [0.882, 0.968]
    >>> wilson_ci(10, 10)[1]
    1.0
    """
    if n <= 0:
        return float("nan"), float("nan")
    p, d = successes / n, 1 + z * z / n
    centre, half = (p + z * z / (2 * n)) / d, z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return max(0.0, min(p, float(centre - half))), min(1.0, max(p, float(centre + half)))
