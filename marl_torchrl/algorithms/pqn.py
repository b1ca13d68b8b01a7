"""PQN (Gallici et al., ICLR 2025) with value decomposition: ``pqn_vdn``, ``pqn_qmix``, ``pqn_iql``, any mixer.

``build_pqn`` makes the shared agent Q-network as ``model`` says (the ``pqn_*`` presets select
``configs/model/normalised.yaml``: LayerNorm after each hidden layer and over each agent's observation;
``model.layer_norm=false model.input_norm=null`` turns it off; ``model.input_norm=running`` standardises each
observation feature by the collected data's statistics instead, the role of the reference's input BatchNorm),
the epsilon-greedy acting policy, the :class:`~marl_torchrl.objectives.pqn.PQNLoss` with the configured mixer, one Adam (or RMSprop) whose
learning rate decays linearly to 0 over ``total_frames`` (``lr_decay``, on by default:
:class:`~marl_torchrl.algorithms.base.LinearLRDecay`), and no target network.
``rollout=RolloutSpec(epochs, minibatches)`` makes the loop train on each collected rollout itself.

>>> from marl_torchrl.envs import EnvSpecInfo
>>> from marl_torchrl.config import ModelConfig, PQNConfig
>>> info = EnvSpecInfo(n_agents=2, obs_dim=3, state_dim=6, n_actions=4, continuous=False,
...                    action_low=None, action_high=None, has_action_mask=False, max_steps=10)
>>> parts = build_pqn(PQNConfig(name="pqn_vdn", mixer="vdn"), ModelConfig(hidden_dim=16), info, "cpu", 1000)
>>> type(parts.loss).__name__, parts.rollout, parts.target_updater.pairs
('PQNLoss', RolloutSpec(epochs=4, minibatches=4), [])
"""
from __future__ import annotations

from typing import Any

from marl_torchrl.algorithms.acting import epsilon_greedy_policy
from marl_torchrl.algorithms.base import AlgorithmParts, assemble_parts, make_optimizer
from marl_torchrl.algorithms.value_decomposition import build_agent_net, require_discrete
from marl_torchrl.config import ModelConfig, PQNConfig, as_config
from marl_torchrl.data import RolloutSpec
from marl_torchrl.modules.mixers import make_mixer
from marl_torchrl.objectives.pqn import PQNLoss
from marl_torchrl.registry import ALGORITHMS


@ALGORITHMS.register("pqn")
def build_pqn(cfg: Any, model_cfg: Any, info, device, total_frames: int, *, burn_in: int = 0) -> AlgorithmParts:
    """Policy, loss, optimiser, learning-rate schedule and rollout spec of PQN (``burn_in`` does not apply:
    every rollout row is unrolled from the state its policy had at the row's first step)."""
    cfg = as_config(cfg, PQNConfig, "algorithm")
    require_discrete(cfg.name, info)
    net = build_agent_net(as_config(model_cfg, ModelConfig, "model"), info, info.n_actions).to(device)
    mixer = None
    if cfg.mixer is not None:
        mixer = make_mixer(cfg.mixer, info.n_agents, info.state_dim, **cfg.mixer_options).to(device)
    loss = PQNLoss(net, mixer, gamma=cfg.gamma, td_lambda=cfg.td_lambda, reward_scale=cfg.reward_scale,
                   standardise_rewards=cfg.standardise_rewards)
    policy, explore = epsilon_greedy_policy(net, info, device, **cfg.epsilon(), total_frames=total_frames)
    optimizer = make_optimizer(cfg.optimizer, loss.parameters(), lr=cfg.lr)
    # no target network: the loss has no target pairs, and PQNConfig leaves both target keys null
    parts = assemble_parts(cfg, policy=policy, loss=loss, agent_net=net, info=info,
                           optimizers={"loss": optimizer}, exploration=explore, total_frames=total_frames)
    parts.rollout = RolloutSpec(epochs=cfg.epochs, minibatches=cfg.minibatches)
    return parts
