"""FACMAC: a shared actor, a shared per-agent critic and a mixer (non-monotonic by default).

``build_facmac`` makes the actor (the ``model`` group: GRU or MLP, agent id optional), the critic
``Q_i(o_i, a_i)``, the mixer named by ``mixer`` (``nonmonotonic``, ``qmix``, ``vdn``, or null for
independent critics), the :class:`~marl_torchrl.objectives.facmac.FACMACLoss`, one optimiser per loss
term (``actor_lr`` for ``loss_actor``, ``critic_lr`` for ``loss_qvalue``, which trains critic and mixer)
and the target updater; ``twin_critics``, ``target_noise`` and ``policy_delay`` add TD3's clipped double
Q, target policy smoothing and delayed actor updates. Acting is decentralised: discrete actors play the greedy action among
available actions with epsilon exploration; continuous actors play their bounded action plus Gaussian
noise. With ``stochastic_actor`` the actor is a categorical or squashed normal that explores by
sampling, trained with SAC's entropy bonus and a learned temperature (``loss_alpha``, ``alpha_lr``; see
:class:`~marl_torchrl.objectives.facmac_soft.SoftFACMACLoss`); evaluation plays its mode. Registered as ``facmac``.

>>> from marl_torchrl.envs import EnvSpecInfo
>>> info = EnvSpecInfo(n_agents=2, obs_dim=3, state_dim=6, n_actions=2, continuous=True,
...                    action_low=[[-1.0, -1.0]] * 2, action_high=[[1.0, 1.0]] * 2,
...                    has_action_mask=False, max_steps=10)
>>> from marl_torchrl.config import FACMACConfig, ModelConfig
>>> parts = build_facmac(FACMACConfig(name="facmac", mixer="vdn"), ModelConfig(type="mlp"), info, "cpu", 1000)
>>> sorted(parts.optimizers), type(parts.loss).__name__
(['loss_actor', 'loss_qvalue'], 'FACMACLoss')
>>> soft = build_facmac(FACMACConfig(name="facmac", mixer="vdn", stochastic_actor=True), ModelConfig(type="mlp"),
...                     info, "cpu", 1000)
>>> sorted(soft.optimizers), type(soft.loss).__name__
(['loss_actor', 'loss_alpha', 'loss_qvalue'], 'SoftFACMACLoss')
"""
from __future__ import annotations

from typing import Any

from tensordict.nn import TensorDictSequential

from marl_torchrl import keys
from marl_torchrl.algorithms.acting import action_space, epsilon_greedy_policy, gaussian_noise_policy, ou_noise_policy
from marl_torchrl.algorithms.base import AlgorithmParts, assemble_parts, make_optimizer
from marl_torchrl.algorithms.value_decomposition import build_agent_net
from marl_torchrl.config import FACMACConfig, ModelConfig, as_config
from marl_torchrl.modules.critics import AgentActionCritic
from marl_torchrl.modules.ou_noise import NOISE
from marl_torchrl.modules.recurrence import AgentNetModule, hidden_state_primer
from marl_torchrl.modules.stochastic import StochasticActionModule
from marl_torchrl.modules.mixers import make_mixer
from marl_torchrl.objectives.facmac import FACMACLoss
from marl_torchrl.objectives.facmac_soft import SoftFACMACLoss
from marl_torchrl.registry import ALGORITHMS


@ALGORITHMS.register("facmac")
def build_facmac(cfg: Any, model_cfg: Any, info, device, total_frames: int, *, burn_in: int = 0) -> AlgorithmParts:
    """Policy, FACMAC loss, actor and critic optimisers and the (soft) target updater."""
    cfg = as_config(cfg, FACMACConfig, "algorithm")
    model = as_config(model_cfg, ModelConfig, "model")
    bound, action_dim, n_actions = action_space(info, device)
    gaussian = cfg.stochastic_actor and info.continuous  # mean and log-std per action dimension
    actor = build_agent_net(model, info, 2 * action_dim if gaussian else action_dim).to(device)
    critic, mixer = _critic_and_mixer(cfg, model, info, device, action_dim)
    twin_critic, twin_mixer = _critic_and_mixer(cfg, model, info, device, action_dim) if cfg.twin_critics else (None, None)
    common = dict(
        n_actions=n_actions, bound=bound, gamma=cfg.gamma, td_lambda=cfg.td_lambda,
        gumbel_temperature=cfg.gumbel_temperature, action_reg=cfg.action_reg, preact_reg=cfg.preact_reg,
        burn_in=burn_in, standardise_rewards=cfg.standardise_rewards, reward_scale=cfg.reward_scale,
        twin_critic=twin_critic, twin_mixer=twin_mixer, policy_delay=cfg.policy_delay,
    )
    if cfg.stochastic_actor:  # samples while collecting, plays the mode in evaluation
        loss = SoftFACMACLoss(actor, critic, mixer, alpha_init=cfg.alpha_init, learn_alpha=cfg.learn_alpha,
                              target_entropy=cfg.target_entropy, **common)
        policy = TensorDictSequential(AgentNetModule(actor, out_key=keys.ACTOR_OUTPUT), StochasticActionModule(bound))
        explore = None
    else:
        loss = FACMACLoss(actor, critic, mixer, target_noise=cfg.target_noise,
                          target_noise_clip=cfg.target_noise_clip, **common)
        policy, explore = _exploring_policy(cfg, actor, bound, info, device, total_frames)
    critic_params = [p for m in (critic, mixer, twin_critic, twin_mixer) if m is not None for p in m.parameters()]
    optimizers = {
        "loss_actor": make_optimizer(cfg.optimizer, actor.parameters(), lr=cfg.actor_lr),
        "loss_qvalue": make_optimizer(cfg.optimizer, critic_params, lr=cfg.critic_lr),
    }
    if cfg.stochastic_actor and loss.learn_alpha:
        optimizers["loss_alpha"] = make_optimizer(cfg.optimizer, [loss.log_alpha], lr=cfg.alpha_lr)
    parts = assemble_parts(cfg, policy=policy, loss=loss, optimizers=optimizers, agent_net=actor, info=info,
                           exploration=explore, total_frames=total_frames)
    if info.continuous and cfg.noise_type == "ou":  # the process state travels with the data: zeros at reset
        parts.env_transforms.append(hidden_state_primer(info.n_agents, action_dim, hidden_key=NOISE))
    return parts


def _exploring_policy(cfg: FACMACConfig, actor, bound, info, device, total_frames: int):
    """A deterministic actor's ``(policy, exploration module)``: epsilon-greedy for discrete actions,
    Gaussian or Ornstein-Uhlenbeck noise on the bounded action for continuous ones."""
    if not info.continuous:
        return epsilon_greedy_policy(actor, info, device, **cfg.epsilon(), total_frames=total_frames)
    sigma = (cfg.noise_sigma_start, cfg.noise_sigma_end, cfg.noise_anneal_fraction)
    if cfg.noise_type == "ou":
        return ou_noise_policy(actor, bound, info, device, sigma=sigma, theta=cfg.ou_theta,
                               total_frames=total_frames, random_frames=cfg.random_frames)
    return gaussian_noise_policy(actor, bound, info, device, sigma=sigma, total_frames=total_frames,
                                 random_frames=cfg.random_frames)


def _critic_and_mixer(cfg: FACMACConfig, model: ModelConfig, info, device, action_dim: int):
    """A per-agent critic ``Q_i(o_i, a_i)`` and the mixer over it (None for independent critics)."""
    critic = AgentActionCritic(
        info.obs_dim, action_dim, info.n_agents, discrete=not info.continuous,
        hidden_dim=cfg.critic_hidden_dim, layers=cfg.critic_layers, agent_id=model.agent_id,
    ).to(device)
    mixer = None if cfg.mixer is None else make_mixer(cfg.mixer, info.n_agents, info.state_dim, **cfg.mixer_options).to(device)
    return critic, mixer
