"""What an algorithm hands to the training loop, and the pieces every algorithm shares.

An algorithm is a function ``build(algo_cfg, model_cfg, info, device, total_frames, *, burn_in) ->
AlgorithmParts`` registered in :data:`marl_torchrl.registry.ALGORITHMS` under the name of its config
schema (:data:`marl_torchrl.config.ALGORITHM_SCHEMAS`); every preset of that schema uses it. It builds networks, the acting
policy, the loss and one optimiser per loss term; it runs nothing. The loop runs the parts.

>>> import torch
>>> opt = make_optimizer("adam", torch.nn.Linear(2, 2).parameters(), lr=1e-3)
>>> type(opt).__name__, opt.defaults["fused"]
('Adam', True)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable

import torch
from tensordict.nn import TensorDictModuleBase
from tensordict.utils import NestedKey
from torchrl.envs.transforms import Transform
from torchrl.objectives import LossModule

from marl_torchrl import keys
from marl_torchrl.data.paths import RolloutSpec
from marl_torchrl.modules.recurrence import hidden_state_primer
from marl_torchrl.objectives.targets import TargetUpdater
from marl_torchrl.registry import ConfigError

_OPTIMIZERS = {"adam": torch.optim.Adam, "rmsprop": torch.optim.RMSprop, "radam": torch.optim.RAdam}


def make_optimizer(name: str, params: Iterable[torch.nn.Parameter], *, lr: float, **kwargs):
    """Adam, RMSprop (PyMARL's RMSprop uses alpha=0.99, eps=1e-5) or RAdam (PQN's reference) over trainable
    parameters.

    All update all parameters together instead of in torch's per-tensor Python loop (torch's default
    on the CPU): Adam ``fused``, one kernel (4x faster per step on balance's QMIX MLP; the same update
    up to float rounding), RMSprop ``foreach``, multi-tensor ops (bit-identical), RAdam ``foreach`` (up to
    float rounding). ``kwargs`` override these.

    >>> net = torch.nn.Linear(3, 2)
    >>> type(make_optimizer("radam", net.parameters(), lr=1e-3)).__name__
    'RAdam'
    """
    if name not in _OPTIMIZERS:
        raise ConfigError(f"unknown optimizer '{name}'; known: {', '.join(sorted(_OPTIMIZERS))}")
    if not lr > 0:
        raise ConfigError(f"lr must be > 0, got {lr}")
    params = [p for p in params if p.requires_grad]
    if name == "rmsprop":
        kwargs = {"alpha": 0.99, "eps": 1e-5, "foreach": True, **kwargs}
    elif name == "radam":
        kwargs = {"foreach": True, **kwargs}
    elif all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params):
        kwargs = {"fused": True, **kwargs}
    return _OPTIMIZERS[name](params, lr=lr, **kwargs)


@dataclass
class AlgorithmParts:
    """Everything the loop needs from an algorithm.

    Attributes:
        policy: the acting policy (exploration included), a TensorDictModule reading the env's face.
            Under ``ExplorationType.DETERMINISTIC`` it acts greedily from the agent networks alone.
        loss: a torchrl ``LossModule`` whose output holds one or more ``loss*`` terms.
        optimizers: loss term name -> optimiser of the parameters that term trains.
        target_updater: called once after every gradient step.
        grad_clip: max gradient norm per optimiser (None = no clipping).
        exploration_step: called with the number of frames collected, to anneal exploration.
        env_transforms: transforms the policy needs on the env (e.g. the hidden-state primer).
        modules: named modules whose state goes into checkpoints (besides loss and optimisers).
        hidden_key: where the policy keeps its recurrent state (None for feed-forward agents); the
            replay stores it at the start of each sequence.
        rollout: None for off-policy training from sequence replay; a
            :class:`~marl_torchrl.data.paths.RolloutSpec` to train on each collected rollout itself
            (epochs x minibatches, no replay).
        observers: the online agent networks with running input statistics, moved by :meth:`observe`
            (target copies follow them through the target updates).

    >>> from marl_torchrl.algorithms.value_decomposition import build_value_decomposition
    >>> from marl_torchrl.envs import EnvSpecInfo
    >>> info = EnvSpecInfo(n_agents=2, obs_dim=3, state_dim=6, n_actions=4, continuous=False,
    ...                    action_low=None, action_high=None, has_action_mask=False, max_steps=10)
    >>> from marl_torchrl.config import ModelConfig, ValueDecompositionConfig
    >>> cfg = ValueDecompositionConfig(name="iql", mixer=None)
    >>> parts = build_value_decomposition(cfg, ModelConfig(), info, "cpu", 1000)
    >>> parts.exploration_metrics(), list(parts.optimizers)
    ({'rollout/epsilon': 1.0}, ['loss'])
    """

    policy: TensorDictModuleBase
    loss: LossModule
    optimizers: dict[str, torch.optim.Optimizer]
    target_updater: TargetUpdater
    grad_clip: float | None = None
    exploration_step: Callable[[int], None] = lambda frames: None
    env_transforms: list[Transform] = field(default_factory=list)
    modules: dict[str, torch.nn.Module] = field(default_factory=dict)
    hidden_key: NestedKey | None = None
    rollout: RolloutSpec | None = None
    observers: list[torch.nn.Module] = field(default_factory=list)

    def observe(self, batch) -> None:
        """A collected batch's observations into the online networks' running input statistics
        (``model.input_norm=running``), once per batch, before the updates on it."""
        for net in self.observers:
            net.observe(batch.get(keys.OBS))

    def exploration_metrics(self) -> dict[str, float]:
        """The exploration schedule's current value for logging: ``rollout/epsilon`` (epsilon-greedy)
        or ``rollout/noise_sigma`` (action noise; with ``random_frames`` also ``rollout/random_actions``, 1
        while the actions are uniform); empty when the policy has neither."""
        m = self.modules.get("exploration")
        if m is not None and hasattr(m, "eps"):
            return {"rollout/epsilon": float(m.eps)}
        if m is not None and hasattr(m, "sigma"):
            random = {"rollout/random_actions": float(m.random)} if hasattr(m, "random") else {}  # a RandomStart
            return {"rollout/noise_sigma": float(m.sigma), **random}
        return {}

    def lr_metrics(self) -> dict[str, float]:
        """With ``lr_decay``, each optimiser's current learning rate: ``train/lr`` for the one optimiser
        ``loss``, ``train/lr_<term>`` for ``loss_<term>``; empty without a schedule."""
        if "lr_schedule" not in self.modules:
            return {}
        return {"train/lr" + name.removeprefix("loss"): opt.param_groups[0]["lr"]
                for name, opt in self.optimizers.items()}


class LinearLRDecay(torch.nn.Module):
    """Sets each optimiser's learning rate to its own starting value times ``1 - frames / total_frames`` (not
    below 0) for the updates on each collected batch, ``frames`` being those collected before it. Its frame
    count is a buffer, so it goes into checkpoints and a resumed run continues the schedule.

    >>> fast, slow = (torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr) for lr in (1.0, 0.1))
    >>> decay = LinearLRDecay([fast, slow], total_frames=100)
    >>> decay.step(25); decay.step(25); fast.param_groups[0]["lr"], round(slow.param_groups[0]["lr"], 6)
    (0.75, 0.075)
    """

    def __init__(self, optimizers: Iterable[torch.optim.Optimizer], *, total_frames: int):
        super().__init__()
        # the optimisers, not their groups: loading an optimiser's state replaces its param_groups
        self.optimizers = list(optimizers)
        self.start_lrs = [[float(g["lr"]) for g in opt.param_groups] for opt in self.optimizers]
        self.total_frames = max(1, int(total_frames))
        self.register_buffer("frames", torch.zeros((), dtype=torch.long))

    def step(self, frames: int) -> None:
        """Called once per collected batch of ``frames`` frames, before its updates."""
        done = int(self.frames)  # frames before this batch
        left = max(0.0, 1.0 - done / self.total_frames)
        for opt, lrs in zip(self.optimizers, self.start_lrs):
            for group, lr in zip(opt.param_groups, lrs):
                group["lr"] = lr * left
        self.frames.fill_(done + int(frames))


def online_observers(loss: torch.nn.Module) -> list[torch.nn.Module]:
    """The agent networks in ``loss`` whose running input statistics move with the collected data: every
    module with a running input norm (an ``observe`` method and an ``in_norm`` with ``update``) that is
    not inside one of the loss's target networks.

    >>> from marl_torchrl.modules.agents import SharedAgentNet
    >>> from marl_torchrl.objectives.pqn import PQNLoss
    >>> [len(online_observers(PQNLoss(SharedAgentNet(3, 2, 4, input_norm=n)))) for n in ("running", "layer")]
    [1, 0]
    """
    targets = {id(m) for _, target in getattr(loss, "target_pairs", lambda: [])() for m in target.modules()}
    return [m for m in loss.modules() if id(m) not in targets and hasattr(m, "observe")
            and hasattr(getattr(m, "in_norm", None), "update")]


def assemble_parts(cfg, *, policy, loss, optimizers, agent_net, info, exploration=None,
                   total_frames: int | None = None) -> AlgorithmParts:
    """The parts every algorithm finishes with: the target updater from the config's
    ``target_hard_interval`` / ``target_tau``, its ``grad_clip``, with ``lr_decay`` a
    :class:`LinearLRDecay` of all ``optimizers`` over ``total_frames`` (checkpointed as ``lr_schedule``), and,
    for a recurrent agent network, its hidden-state primer and key. ``exploration`` is a module with
    ``step(frames)`` (epsilon or noise schedule), or None when the policy explores by itself.

    >>> from marl_torchrl.algorithms.value_decomposition import build_value_decomposition
    >>> from marl_torchrl.config import ModelConfig, ValueDecompositionConfig
    >>> from marl_torchrl.envs import EnvSpecInfo
    >>> info = EnvSpecInfo(2, 3, 6, 4, False, None, None, False, 10)
    >>> cfg = ValueDecompositionConfig(name="vdn", mixer="vdn", grad_clip=None)
    >>> build_value_decomposition(cfg, ModelConfig(type="mlp"), info, "cpu", 100).grad_clip is None
    True
    """
    rnn = bool(getattr(agent_net, "rnn", False))
    parts = AlgorithmParts(
        policy=policy,
        loss=loss,
        optimizers=optimizers,
        target_updater=TargetUpdater(loss.target_pairs(), hard_interval=cfg.target_hard_interval, tau=cfg.target_tau),
        grad_clip=cfg.grad_clip,
        exploration_step=exploration.step if exploration is not None else (lambda frames: None),
        env_transforms=[hidden_state_primer(info.n_agents, agent_net.hidden_dim)] if rnn else [],
        modules={"exploration": exploration} if exploration is not None else {},
        hidden_key=keys.HIDDEN if rnn else None,
        observers=online_observers(loss),
    )
    if getattr(cfg, "lr_decay", False):
        if total_frames is None:
            raise ConfigError(f"algorithm.lr_decay: the builder of '{cfg.name}' does not pass total_frames to "
                              "assemble_parts, so it has no budget to decay over")
        decay = parts.modules["lr_schedule"] = LinearLRDecay(optimizers.values(), total_frames=total_frames)
        explore_step = parts.exploration_step

        def step(frames: int) -> None:
            explore_step(frames)
            decay.step(frames)

        parts.exploration_step = step
    return parts
