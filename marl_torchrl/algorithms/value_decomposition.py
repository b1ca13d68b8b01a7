"""IQL, VDN and QMIX: one value-decomposition algorithm, three mixers (and Weighted QMIX as options).

``build`` makes the shared agent Q-network, the epsilon-greedy acting policy (greedy actions from the
agent network alone: no mixer, no state), the sequence loss with the configured mixer (none for IQL),
its optimiser and the target-network updater. Registered names: ``iql``, ``vdn``, ``qmix``,
``qmix_nonmono``, ``ow_qmix``, ``cw_qmix``. With ``weighting: ow|cw`` (Weighted QMIX) it also builds a
central ``Q*`` (a second agent network plus a feed-forward mixer of ``central_mixer_embed`` units) that
the loss trains with the same optimiser; acting stays the QMIX agent network alone.

>>> from marl_torchrl.envs import EnvSpecInfo
>>> info = EnvSpecInfo(n_agents=2, obs_dim=3, state_dim=6, n_actions=4, continuous=False,
...                    action_low=None, action_high=None, has_action_mask=False, max_steps=10)
>>> from marl_torchrl.config import ModelConfig, ValueDecompositionConfig
>>> cfg = ValueDecompositionConfig(name="vdn", mixer="vdn")  # the numbers of `marl-train algorithm=vdn`
>>> parts = build_value_decomposition(cfg, ModelConfig(hidden_dim=16), info, "cpu", total_frames=1000)
>>> type(parts.loss).__name__, list(parts.optimizers)
('ValueDecompositionLoss', ['loss'])
"""
from __future__ import annotations

from typing import Any

from marl_torchrl.algorithms.acting import epsilon_greedy_policy
from marl_torchrl.algorithms.base import AlgorithmParts, assemble_parts, make_optimizer
from marl_torchrl.config import ModelConfig, ValueDecompositionConfig, WeightedQMIXConfig, as_config
from marl_torchrl.modules.agents import SharedAgentNet
from marl_torchrl.modules.mixers import make_mixer
from marl_torchrl.objectives.value_decomposition import ValueDecompositionLoss
from marl_torchrl.objectives.weighted import CentralQ
from marl_torchrl.registry import ALGORITHMS, ConfigError


def build_agent_net(model_cfg: Any, info, out_dim: int, **overrides) -> SharedAgentNet:
    """The shared agent network from a :class:`~marl_torchrl.config.ModelConfig` (or a mapping of its keys)."""
    m = as_config(model_cfg, ModelConfig, "model")
    return SharedAgentNet(
        info.obs_dim, info.n_agents, out_dim, hidden_dim=m.hidden_dim, rnn=m.type == "gru", layers=m.layers,
        agent_id=m.agent_id, layer_norm=m.layer_norm, input_norm=m.input_norm, activation=m.activation,
        orthogonal_init=m.orthogonal_init, input_layers=m.input_layers, **overrides,
    )


def require_discrete(name: str, info) -> None:
    if info.continuous:
        raise ConfigError(
            f"algorithm '{name}' needs discrete actions but the env has continuous ones; "
            "choose discrete actions (env.continuous_actions=false on VMAS, "
            "env.kwargs.continuous_actions=false on PettingZoo MPE) or algorithm=facmac|dop"
        )


@ALGORITHMS.register("value_decomposition")
@ALGORITHMS.register("weighted_qmix")
def build_value_decomposition(
    cfg: Any, model_cfg: Any, info, device, total_frames: int, *, burn_in: int = 0
) -> AlgorithmParts:
    """Policy, loss, optimiser and target updater for IQL / VDN / QMIX / any mixer (``cfg.mixer``);
    a :class:`~marl_torchrl.config.WeightedQMIXConfig` adds Weighted QMIX's central ``Q*``."""
    weighted = isinstance(cfg, WeightedQMIXConfig) or (  # a mapping that names a weighting is Weighted QMIX's
        not isinstance(cfg, ValueDecompositionConfig) and "weighting" in cfg)
    cfg = as_config(cfg, WeightedQMIXConfig if weighted else ValueDecompositionConfig, "algorithm")
    require_discrete(cfg.name, info)
    net = build_agent_net(model_cfg, info, info.n_actions).to(device)
    mixer = None
    if cfg.mixer is not None:
        mixer = make_mixer(cfg.mixer, info.n_agents, info.state_dim, **cfg.mixer_options).to(device)
    central = None
    if weighted:  # Weighted QMIX's central Q*: own agent net + feed-forward mixer
        central_mixer = make_mixer("feedforward", info.n_agents, info.state_dim,
                                   mixing_embed_dim=cfg.central_mixer_embed)
        central = CentralQ(build_agent_net(model_cfg, info, info.n_actions), central_mixer).to(device)
    loss = ValueDecompositionLoss(
        net, mixer, gamma=cfg.gamma, td_lambda=cfg.td_lambda, double_q=cfg.double_q, burn_in=burn_in,
        loss_function=cfg.loss_function, central=central,
        weighting=cfg.weighting if weighted else None, alpha=cfg.alpha if weighted else 0.1,
        standardise_rewards=cfg.standardise_rewards, reward_scale=cfg.reward_scale,
    )
    policy, explore = epsilon_greedy_policy(net, info, device, **cfg.epsilon(), total_frames=total_frames)
    optimizer = make_optimizer(cfg.optimizer, loss.parameters(), lr=cfg.lr)
    return assemble_parts(cfg, policy=policy, loss=loss, optimizers={"loss": optimizer}, agent_net=net, info=info,
                          exploration=explore, total_frames=total_frames)
