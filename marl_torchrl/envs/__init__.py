"""Environments with one face: ``make_env(cfg)`` builds any registered family, ``describe(env)`` reads it.

Importing this package registers the families ``vmas``, ``matrix``, ``gridworld``, ``lbf``, ``pettingzoo`` and ``smax``
in :data:`marl_torchrl.registry.ENV_FAMILIES`.

>>> from marl_torchrl.envs import make_env, describe
>>> describe(make_env({"family": "matrix", "task": "two_step"}, num_envs=2)).n_agents
2
"""
from marl_torchrl.envs.face import EnvSpecInfo, describe, make_env, standard_face
from marl_torchrl.envs import gridworld, lbf, matrix, pettingzoo, smax, vmas  # noqa: F401  (register the families)

__all__ = ["EnvSpecInfo", "describe", "make_env", "standard_face"]
