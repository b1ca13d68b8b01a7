"""Collected batches to training batches: sequence replay (off-policy) or the rollout itself (on-policy)."""
from marl_torchrl.data.paths import ReplayPath, RolloutPath, RolloutSpec
from marl_torchrl.data.replay import make_sequence_replay
from marl_torchrl.data.sequences import SequenceBuilder

__all__ = ["ReplayPath", "RolloutPath", "RolloutSpec", "SequenceBuilder", "make_sequence_replay"]
