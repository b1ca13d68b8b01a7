"""Helpers for the QTRAN matrix-game tests: read a trained run's joint-action value table.

``load_run(run_dir)`` rebuilds the loss of a finished run from ``models/final_model.pt`` (as
``marl_torchrl.evaluate.load_policy`` rebuilds the policy) and returns it with the game's single
observation and state; ``joint_q_table(loss, obs, state)`` evaluates the agent network and mixer of
any :class:`~marl_torchrl.objectives.value_decomposition.ValueDecompositionLoss` with a mixer (or its
central ``Q*``) on every joint action.
"""
from __future__ import annotations

import itertools
from pathlib import Path

import torch
from omegaconf import OmegaConf

from marl_torchrl import keys
from marl_torchrl.algorithms import build_algorithm
from marl_torchrl.checkpoint import load_checkpoint, load_parts_state
from marl_torchrl.envs import describe, make_env


def load_run(run_dir: str | Path):
    """``(loss, obs [A, F], state [S])`` of a finished run: trained weights, the env's first observation."""
    ckpt = load_checkpoint(Path(run_dir) / "models" / "final_model.pt")
    cfg = OmegaConf.create(ckpt["config"])
    env = make_env(cfg.env, num_envs=1, seed=cfg.seed)
    parts = build_algorithm(cfg, describe(env), "cpu")
    load_parts_state(parts, ckpt["parts"], weights_only=True)
    td = env.reset()
    return parts.loss, td.get(keys.OBS)[0], td.get(keys.STATE)[0]


@torch.no_grad()
def joint_q_table(loss, obs: torch.Tensor, state: torch.Tensor, *, central: bool = False) -> torch.Tensor:
    """Joint values ``[n] * A`` (``[n, n]`` for two agents) at one observation ``[A, F]`` and state ``[S]``.

    ``Q_tot(s, u) = mixer(q_1(o_1, u_1), ..., q_A(o_A, u_A), s)`` from the online agent network and mixer
    (the first step of an episode: zero hidden state for a GRU agent); ``central=True`` reads Weighted
    QMIX's ``Q*`` instead.

    >>> from marl_torchrl.modules.agents import SharedAgentNet
    >>> from marl_torchrl.modules.mixers import VDNMixer
    >>> from marl_torchrl.objectives.value_decomposition import ValueDecompositionLoss
    >>> loss = ValueDecompositionLoss(SharedAgentNet(obs_dim=1, n_agents=2, out_dim=3, rnn=False), VDNMixer(2, "cpu"))
    >>> table = joint_q_table(loss, torch.zeros(2, 1), torch.zeros(2))
    >>> q = loss.agent_net(torch.zeros(1, 2, 1))[0][0]
    >>> table.shape, torch.allclose(table, q[0][:, None] + q[1][None, :])
    (torch.Size([3, 3]), True)
    """
    net, mixer = (loss.central.agent_net, loss.central.mixer) if central else (loss.agent_net, loss.mixer)
    if mixer is None:
        raise ValueError("joint_q_table needs a loss with a mixer")
    q, _ = net(obs.unsqueeze(0))  # [1, A, n]
    n_agents, n_actions = q.shape[-2:]
    joint = torch.tensor(list(itertools.product(range(n_actions), repeat=n_agents)))  # [n^A, A]
    chosen = q.expand(len(joint), -1, -1).gather(-1, joint.unsqueeze(-1))  # [n^A, A, 1]
    if getattr(mixer, "needs_state", True):
        q_tot = mixer(chosen, state.expand(len(joint), -1).contiguous())
    else:
        q_tot = mixer(chosen)
    return q_tot.reshape([n_actions] * n_agents)
