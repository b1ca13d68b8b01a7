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
>>> cfg = dict(name="vdn", mixer="vdn", gamma=0.99, lr=5e-4, target_hard_interval=200)
>>> parts = build_value_decomposition(cfg, dict(type="gru", hidden_dim=16), info, "cpu", total_frames=1000)
>>> type(parts.loss).__name__, list(parts.optimizers)
('ValueDecompositionLoss', ['loss'])
"""
from __future__ import annotations

from typing import Any, Mapping

from marl_torchrl.algorithms.acting import epsilon_greedy_policy
from marl_torchrl.algorithms.base import AlgorithmParts, assemble_parts, make_optimizer
from marl_torchrl.modules.agents import SharedAgentNet
from marl_torchrl.modules.mixers import make_mixer
from marl_torchrl.objectives.value_decomposition import ValueDecompositionLoss
from marl_torchrl.objectives.weighted import CentralQ
from marl_torchrl.registry import ALGORITHMS, ConfigError, check_known

ALGO_KEYS = {
    "name", "mixer", "mixer_options", "gamma", "td_lambda", "double_q", "loss_function", "optimizer",
    "lr", "grad_clip", "target_hard_interval", "target_tau", "eps_start", "eps_end", "eps_anneal_fraction",
    "weighting", "alpha", "central_mixer_embed",
}
MODEL_KEYS = {"type", "hidden_dim", "layers", "input_layer", "agent_id", "last_action", "layer_norm", "activation",
              "orthogonal_init"}


def build_agent_net(model_cfg: Mapping, info, out_dim: int, **overrides) -> SharedAgentNet:
    """The shared agent network from the ``model`` config group."""
    check_known(model_cfg, MODEL_KEYS, "model option(s)")
    kind = model_cfg.get("type", "gru")
    if kind not in ("gru", "mlp"):
        raise ConfigError(f"unknown model.type '{kind}'; known: gru, mlp")
    return SharedAgentNet(
        info.obs_dim,
        info.n_agents,
        out_dim,
        hidden_dim=int(model_cfg.get("hidden_dim", 64)),
        rnn=kind == "gru",
        layers=int(model_cfg.get("layers", 2)),
        agent_id=bool(model_cfg.get("agent_id", True)),
        layer_norm=bool(model_cfg.get("layer_norm", False)),
        activation=model_cfg.get("activation", "relu"),
        orthogonal_init=bool(model_cfg.get("orthogonal_init", True)),
        input_layer=bool(model_cfg.get("input_layer", True)),
        **overrides,
    )


def require_discrete(name: str, info) -> None:
    if info.continuous:
        raise ConfigError(
            f"algorithm '{name}' needs discrete actions but the env has continuous ones; "
            "choose discrete actions (env.continuous_actions=false on VMAS, "
            "env.kwargs.continuous_actions=false on PettingZoo MPE) or algorithm=facmac|dop"
        )


def build_value_decomposition(
    cfg: Mapping[str, Any], model_cfg: Mapping[str, Any], info, device, total_frames: int
) -> AlgorithmParts:
    """Policy, loss, optimiser and target updater for IQL / VDN / QMIX (mixer from ``cfg['mixer']``)."""
    check_known(cfg, ALGO_KEYS, f"option(s) for algorithm '{cfg.get('name')}'")
    require_discrete(cfg.get("name", "?"), info)
    net = build_agent_net(model_cfg, info, info.n_actions).to(device)
    mixer_name = cfg.get("mixer")
    mixer = None
    if mixer_name is not None:
        mixer = make_mixer(mixer_name, info.n_agents, info.state_dim, **dict(cfg.get("mixer_options") or {}))
        mixer = mixer.to(device)
    central = None
    if cfg.get("weighting") is not None:  # Weighted QMIX's central Q*: own agent net + feed-forward mixer
        central_mixer = make_mixer(
            "feedforward", info.n_agents, info.state_dim, mixing_embed_dim=int(cfg.get("central_mixer_embed", 256))
        )
        central = CentralQ(build_agent_net(model_cfg, info, info.n_actions), central_mixer).to(device)
    loss = ValueDecompositionLoss(
        net,
        mixer,
        gamma=float(cfg.get("gamma", 0.99)),
        td_lambda=float(cfg.get("td_lambda", 0.0)),
        double_q=bool(cfg.get("double_q", True)),
        loss_function=cfg.get("loss_function", "l2"),
        central=central,
        weighting=cfg.get("weighting"),
        alpha=cfg.get("alpha", 0.1),
    )
    eps = (cfg.get("eps_start", 1.0), cfg.get("eps_end", 0.05), cfg.get("eps_anneal_fraction", 0.1))
    policy, explore = epsilon_greedy_policy(net, info, device, eps=eps, total_frames=total_frames)
    optimizer = make_optimizer(cfg.get("optimizer", "adam"), loss.parameters(), lr=float(cfg.get("lr", 5e-4)))
    return assemble_parts(cfg, policy=policy, loss=loss, optimizers={"loss": optimizer}, agent_net=net, info=info,
                          exploration=explore)


for _name in ("iql", "vdn", "qmix", "qmix_nonmono", "ow_qmix", "cw_qmix"):
    ALGORITHMS.register(_name)(build_value_decomposition)
