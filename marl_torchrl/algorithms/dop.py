"""DOP-SAC: a stochastic shared actor, two recurrent per-agent critics, each with its own DOP mixer.

``build_dop`` makes the actor (the ``model`` group: GRU or MLP, agent id optional; logits for discrete
actions, mean and log-std for continuous ones), two :class:`~marl_torchrl.modules.critics.HistoryCritic`
(GRU trunk over each agent's own observations unless ``critic_rnn: false``), two
:class:`~marl_torchrl.modules.mixers.dop.DOPMixer`, the
:class:`~marl_torchrl.objectives.dop.DOPSACLoss`, one optimiser per loss term (``actor_lr``,
``critic_lr`` for both critics and mixers, ``alpha_lr`` for the temperature) and the target updater.
Acting samples from the policy (SAC explores through its entropy); evaluation takes the mode.
Registered as ``dop``.

>>> from marl_torchrl.envs import EnvSpecInfo
>>> info = EnvSpecInfo(n_agents=2, obs_dim=3, state_dim=6, n_actions=4, continuous=False,
...                    action_low=None, action_high=None, has_action_mask=False, max_steps=10)
>>> from marl_torchrl.config import DOPConfig, ModelConfig
>>> parts = build_dop(DOPConfig(name="dop"), ModelConfig(type="mlp"), info, "cpu", 1000)
>>> sorted(parts.optimizers)
['loss_actor', 'loss_alpha', 'loss_qvalue']
"""
from __future__ import annotations

from typing import Any

from tensordict.nn import TensorDictSequential

from marl_torchrl import keys
from marl_torchrl.algorithms.acting import action_space
from marl_torchrl.algorithms.base import AlgorithmParts, assemble_parts, make_optimizer
from marl_torchrl.algorithms.value_decomposition import build_agent_net
from marl_torchrl.config import DOPConfig, ModelConfig, as_config
from marl_torchrl.modules.critics import HistoryCritic
from marl_torchrl.modules.mixers import make_mixer
from marl_torchrl.modules.recurrence import AgentNetModule
from marl_torchrl.modules.stochastic import StochasticActionModule
from marl_torchrl.objectives.dop import DOPSACLoss
from marl_torchrl.registry import ALGORITHMS


@ALGORITHMS.register("dop")
def build_dop(cfg: Any, model_cfg: Any, info, device, total_frames: int, *, burn_in: int = 0) -> AlgorithmParts:
    """Policy, DOP-SAC loss, actor / critic / temperature optimisers and the target updater."""
    cfg = as_config(cfg, DOPConfig, "algorithm")
    model = as_config(model_cfg, ModelConfig, "model")
    bound, action_dim, n_actions = action_space(info, device)
    actor = build_agent_net(model, info, 2 * action_dim if info.continuous else action_dim).to(device)  # mean, log-std
    critics = [
        HistoryCritic(info.obs_dim, action_dim, info.n_agents, discrete=not info.continuous,
                      hidden_dim=cfg.critic_hidden_dim, rnn=cfg.critic_rnn, agent_id=model.agent_id).to(device)
        for _ in range(2)
    ]
    mixers = [make_mixer("dop", info.n_agents, info.state_dim, **cfg.mixer_options).to(device) for _ in range(2)]
    loss = DOPSACLoss(
        actor, critics, mixers, n_actions=n_actions, bound=bound, gamma=cfg.gamma, td_lambda=cfg.td_lambda,
        alpha_init=cfg.alpha_init, learn_alpha=cfg.learn_alpha, target_entropy=cfg.target_entropy, burn_in=burn_in,
        standardise_rewards=cfg.standardise_rewards, reward_scale=cfg.reward_scale,
    )
    policy = TensorDictSequential(AgentNetModule(actor, out_key=keys.ACTOR_OUTPUT), StochasticActionModule(bound))
    optimizers = {
        "loss_actor": make_optimizer(cfg.optimizer, actor.parameters(), lr=cfg.actor_lr),
        "loss_qvalue": make_optimizer(cfg.optimizer, list(loss.critics.parameters()) + list(loss.mixers.parameters()),
                                      lr=cfg.critic_lr),
    }
    if loss.learn_alpha:
        optimizers["loss_alpha"] = make_optimizer(cfg.optimizer, [loss.log_alpha], lr=cfg.alpha_lr)
    return assemble_parts(cfg, policy=policy, loss=loss, optimizers=optimizers, agent_net=actor, info=info,
                          total_frames=total_frames)
