"""K seeds in one process: independent learners trained as one batched computation (``num_seeds=K``).

- :mod:`~marl_torchrl.seeds.loop`: the training loop of ``num_seeds=K`` (K single runs, stacked updates);
- :mod:`~marl_torchrl.seeds.streams`: :class:`~marl_torchrl.seeds.streams.RngStreams` (one random stream per seed);
- :mod:`~marl_torchrl.seeds.collection`: batched collection (one env of K x num_envs) or per-seed collection;
- :mod:`~marl_torchrl.seeds.acting`: :class:`~marl_torchrl.seeds.acting.StackedActingPolicy` (K seeds' policies in one forward);
- :mod:`~marl_torchrl.seeds.stacked`: :class:`StackedLearners` (build K seeds' parts, one step for all);
- :mod:`~marl_torchrl.seeds.resume`: ``resume=auto`` of a K-run (decided for all seeds together);
- :mod:`~marl_torchrl.seeds.loss`: :class:`StackedValueDecompositionLoss` (K losses, per-seed means);
- :mod:`~marl_torchrl.seeds.pqn_loss`: :class:`StackedPQNLoss` (K PQN losses on their rollouts' minibatches);
- :mod:`~marl_torchrl.seeds.agents`, :mod:`~marl_torchrl.seeds.mixers`: K agent networks / mixers as one;
- :mod:`~marl_torchrl.seeds.gru`: a GRU over K weight sets with a hand-written backward;
- :mod:`~marl_torchrl.seeds.functional`: stacked parameters and layers;
- :mod:`~marl_torchrl.seeds.memory`: :func:`keep_freed_memory` (call once in a process that trains stacked seeds).

Findings and measurements: ``docs/stacked_seeds.md``.
"""
from marl_torchrl.seeds.loss import StackedValueDecompositionLoss
from marl_torchrl.seeds.pqn_loss import StackedPQNLoss
from marl_torchrl.seeds.stacked import StackedLearners, clip_per_seed

__all__ = ["StackedLearners", "StackedPQNLoss", "StackedValueDecompositionLoss", "clip_per_seed"]
