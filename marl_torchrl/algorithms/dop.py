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
>>> parts = build_dop(dict(name="dop", target_tau=0.01), dict(type="mlp"), info, "cpu", 1000)
>>> sorted(parts.optimizers)
['loss_actor', 'loss_alpha', 'loss_qvalue']
"""
from __future__ import annotations

from typing import Any, Mapping

from tensordict.nn import TensorDictSequential

from marl_torchrl import keys
from marl_torchrl.algorithms.acting import action_space
from marl_torchrl.algorithms.base import AlgorithmParts, assemble_parts, make_optimizer
from marl_torchrl.algorithms.value_decomposition import build_agent_net
from marl_torchrl.modules.critics import HistoryCritic
from marl_torchrl.modules.mixers import make_mixer
from marl_torchrl.modules.recurrence import AgentNetModule
from marl_torchrl.modules.stochastic import StochasticActionModule
from marl_torchrl.objectives.dop import DOPSACLoss
from marl_torchrl.registry import ALGORITHMS, check_known

DOP_KEYS = {
    "name", "mixer_options", "gamma", "td_lambda", "optimizer", "actor_lr", "critic_lr", "alpha_lr", "grad_clip",
    "target_hard_interval", "target_tau", "critic_hidden_dim", "critic_rnn", "alpha_init", "learn_alpha",
    "target_entropy",
}


@ALGORITHMS.register("dop")
def build_dop(cfg: Mapping[str, Any], model_cfg: Mapping[str, Any], info, device, total_frames: int) -> AlgorithmParts:
    """Policy, DOP-SAC loss, actor / critic / temperature optimisers and the target updater."""
    check_known(cfg, DOP_KEYS, f"option(s) for algorithm '{cfg.get('name')}'")
    bound, action_dim, n_actions = action_space(info, device)
    actor = build_agent_net(model_cfg, info, 2 * action_dim if info.continuous else action_dim).to(device)  # mean, log-std
    critics = [
        HistoryCritic(info.obs_dim, action_dim, info.n_agents, discrete=not info.continuous,
                      hidden_dim=int(cfg.get("critic_hidden_dim", 64)), rnn=bool(cfg.get("critic_rnn", True)),
                      agent_id=bool(model_cfg.get("agent_id", True))).to(device)
        for _ in range(2)
    ]
    options = dict(cfg.get("mixer_options") or {})
    mixers = [make_mixer("dop", info.n_agents, info.state_dim, **options).to(device) for _ in range(2)]
    target_entropy = cfg.get("target_entropy")
    loss = DOPSACLoss(
        actor, critics, mixers, n_actions=n_actions, bound=bound,
        gamma=float(cfg.get("gamma", 0.99)), td_lambda=float(cfg.get("td_lambda", 0.0)),
        alpha_init=float(cfg.get("alpha_init", 0.1)), learn_alpha=bool(cfg.get("learn_alpha", True)),
        target_entropy=None if target_entropy is None else float(target_entropy),
    )
    policy = TensorDictSequential(AgentNetModule(actor, out_key=keys.ACTOR_OUTPUT), StochasticActionModule(bound))
    opt = cfg.get("optimizer", "adam")
    optimizers = {
        "loss_actor": make_optimizer(opt, actor.parameters(), lr=float(cfg.get("actor_lr", 5e-4))),
        "loss_qvalue": make_optimizer(opt, list(loss.critics.parameters()) + list(loss.mixers.parameters()),
                                      lr=float(cfg.get("critic_lr", 5e-4))),
    }
    if loss.learn_alpha:
        optimizers["loss_alpha"] = make_optimizer(opt, [loss.log_alpha], lr=float(cfg.get("alpha_lr", 3e-4)))
    return assemble_parts(cfg, policy=policy, loss=loss, optimizers=optimizers, agent_net=actor, info=info)
