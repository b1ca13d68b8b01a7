"""FACMAC: a shared actor, a shared per-agent critic and a mixer (non-monotonic by default).

``build_facmac`` makes the actor (the ``model`` group: GRU or MLP, agent id optional), the critic
``Q_i(o_i, a_i)``, the mixer named by ``mixer`` (``nonmonotonic``, ``qmix``, ``vdn``, or null for
independent critics), the :class:`~marl_torchrl.objectives.facmac.FACMACLoss`, one optimiser per loss
term (``actor_lr`` for ``loss_actor``, ``critic_lr`` for ``loss_qvalue``, which trains critic and mixer)
and the target updater. Acting is decentralised: discrete actors play the greedy action among
available actions with epsilon exploration; continuous actors play their bounded action plus Gaussian
noise. Registered as ``facmac``.

>>> from marl_torchrl.envs import EnvSpecInfo
>>> info = EnvSpecInfo(n_agents=2, obs_dim=3, state_dim=6, n_actions=2, continuous=True,
...                    action_low=[[-1.0, -1.0]] * 2, action_high=[[1.0, 1.0]] * 2,
...                    has_action_mask=False, max_steps=10)
>>> parts = build_facmac(dict(name="facmac", mixer="vdn", target_tau=0.01), dict(type="mlp"), info, "cpu", 1000)
>>> sorted(parts.optimizers), type(parts.loss).__name__
(['loss_actor', 'loss_qvalue'], 'FACMACLoss')
"""
from __future__ import annotations

from typing import Any, Mapping

from marl_torchrl.algorithms.acting import action_space, epsilon_greedy_policy, gaussian_noise_policy
from marl_torchrl.algorithms.base import AlgorithmParts, assemble_parts, make_optimizer
from marl_torchrl.algorithms.value_decomposition import build_agent_net
from marl_torchrl.modules.critics import AgentActionCritic
from marl_torchrl.modules.mixers import make_mixer
from marl_torchrl.objectives.facmac import FACMACLoss
from marl_torchrl.registry import ALGORITHMS, check_known

FACMAC_KEYS = {
    "name", "mixer", "mixer_options", "gamma", "td_lambda", "optimizer", "actor_lr", "critic_lr", "grad_clip",
    "target_hard_interval", "target_tau", "critic_hidden_dim", "critic_layers", "gumbel_temperature",
    "action_reg", "eps_start", "eps_end", "eps_anneal_fraction", "noise_sigma_start", "noise_sigma_end",
    "noise_anneal_fraction",
}


@ALGORITHMS.register("facmac")
def build_facmac(cfg: Mapping[str, Any], model_cfg: Mapping[str, Any], info, device, total_frames: int) -> AlgorithmParts:
    """Policy, FACMAC loss, actor and critic optimisers and the (soft) target updater."""
    check_known(cfg, FACMAC_KEYS, f"option(s) for algorithm '{cfg.get('name')}'")
    bound, action_dim, n_actions = action_space(info, device)
    actor = build_agent_net(model_cfg, info, action_dim).to(device)
    critic = AgentActionCritic(
        info.obs_dim, action_dim, info.n_agents, discrete=not info.continuous,
        hidden_dim=int(cfg.get("critic_hidden_dim", 64)), layers=int(cfg.get("critic_layers", 2)),
        agent_id=bool(model_cfg.get("agent_id", True)),
    ).to(device)
    mixer = None
    if cfg.get("mixer") is not None:
        mixer = make_mixer(cfg["mixer"], info.n_agents, info.state_dim, **dict(cfg.get("mixer_options") or {}))
        mixer = mixer.to(device)
    loss = FACMACLoss(
        actor, critic, mixer, n_actions=n_actions, bound=bound,
        gamma=float(cfg.get("gamma", 0.99)), td_lambda=float(cfg.get("td_lambda", 0.8)),
        gumbel_temperature=float(cfg.get("gumbel_temperature", 1.0)), action_reg=float(cfg.get("action_reg", 1e-3)),
    )
    if info.continuous:
        sigma = (cfg.get("noise_sigma_start", 0.1), cfg.get("noise_sigma_end", 0.1), cfg.get("noise_anneal_fraction", 1.0))
        policy, explore = gaussian_noise_policy(actor, bound, info, device, sigma=sigma, total_frames=total_frames)
    else:
        eps = (cfg.get("eps_start", 0.5), cfg.get("eps_end", 0.05), cfg.get("eps_anneal_fraction", 0.1))
        policy, explore = epsilon_greedy_policy(actor, info, device, eps=eps, total_frames=total_frames)
    opt_name = cfg.get("optimizer", "adam")
    critic_params = list(critic.parameters()) + ([] if mixer is None else list(mixer.parameters()))
    optimizers = {
        "loss_actor": make_optimizer(opt_name, actor.parameters(), lr=float(cfg.get("actor_lr", 5e-4))),
        "loss_qvalue": make_optimizer(opt_name, critic_params, lr=float(cfg.get("critic_lr", 5e-4))),
    }
    return assemble_parts(cfg, policy=policy, loss=loss, optimizers=optimizers, agent_net=actor, info=info,
                          exploration=explore)
