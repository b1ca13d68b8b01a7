"""One SMAX env of K x E battles whose block ``k`` follows seed ``k``'s own key stream exactly.

:class:`~marl_torchrl.envs.smax.SMAXEnv` keeps one jax PRNG key: every reset call (when any of its envs
resets) and every step splits it into its next key and a subkey, and the subkey into one key per env
(all E envs draw a fresh start at a reset; those not resetting keep their state). A SMAX env of K x E
envs holding K seeds' blocks keeps K keys instead, block ``k``'s taken from seed ``k``'s own E-env env
(its *source*, never stepped or reset itself), and :func:`seed_block_streams` gives it a reset and a step
that split each block's key exactly as the source splits its own (``jax.vmap`` of the same split over
the K keys): at a reset only the blocks with an env to reset split theirs, as a source env is not reset at
all when none of its envs ends; every step splits every block's. The K x E per-env keys then go to the
same vectorised SMAX reset and step as a single env's, in one jitted call, so a block's battles get the
keys, and with them the starts and the stochastic steps, of seed ``k``'s env alone, whatever the other
blocks do (``tests/test_seeds_collection_blocks.py``); the K-batch costs one call of K x E envs.

>>> import contextlib
>>> from marl_torchrl.envs.smax import SMAXEnv
>>> def battles(n, seed):
...     env = SMAXEnv("3m", num_envs=n, max_steps=5)
...     env.set_seed(seed)
...     return env
>>> big, alone = SMAXEnv("3m", num_envs=4, max_steps=5), battles(2, 1)
>>> big.reset_blocks_from([battles(2, 0), battles(2, 1)], rng=lambda k: contextlib.nullcontext())
>>> big.reset()["state"][2:].equal(alone.reset()["state"])          # block 1 starts as seed 1's env
True
>>> big._key.shape                                                   # one key per block
(2, 2)
"""
from __future__ import annotations

from typing import Sequence

from marl_torchrl.envs.seed_blocks import block_size

__all__ = ["seed_block_streams"]

_BLOCK_FNS: dict = {}  # (map, options) -> jitted (block reset, block step): one compilation per game


def _block_fns(env) -> tuple:
    if env._game_key in _BLOCK_FNS:
        return _BLOCK_FNS[env._game_key]
    jax, (reset, step, split) = env._jax, env._core

    def split_blocks(keys, n):  # every block's next key, and its E per-env keys, blocks in order
        nxt, per_env = jax.vmap(lambda key: split(key, n // keys.shape[0]))(keys)
        return nxt, per_env.reshape((n,) + per_env.shape[2:])

    def block_reset(keys, state, which, limit):
        nxt, per_env = split_blocks(keys, which.shape[0])
        any_reset = which.reshape(keys.shape[0], -1).any(1)  # a source env not reset does not split
        keys = jax.numpy.where(any_reset.reshape((-1,) + (1,) * (keys.ndim - 1)), nxt, keys)
        return (keys, *reset(per_env, state, which, limit))

    def block_step(keys, state, actions, limit):
        keys, per_env = split_blocks(keys, actions.shape[0])
        return (keys, *step(per_env, state, actions, limit))

    _BLOCK_FNS[env._game_key] = jax.jit(block_reset), jax.jit(block_step)
    return _BLOCK_FNS[env._game_key]


def seed_block_streams(env, sources: Sequence) -> tuple:
    """``(keys, reset, step)`` for ``env`` (a ``SMAXEnv`` of ``K * E`` battles) to use in place of its key and
    its jitted reset and step: the K sources' keys, stacked, and a reset and a step with a single env's
    signature that split each block's key as its source would (see the module docstring, which has the
    example). ``sources``: seed ``k``'s E-env ``SMAXEnv`` for each block ``k``, on the same map and options."""
    block_size(env, sources)
    if any((s._game_key, s.episode_limit) != (env._game_key, env.episode_limit) for s in sources):
        raise ValueError("every seed's SMAX env must have the big env's map, options and step limit")
    keys = env._jax.device_put(env._jax.numpy.stack([s._key for s in sources]), env._jax_device)
    return (keys, *_block_fns(env))
