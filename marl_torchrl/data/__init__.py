"""Replay of sequences/episodes: collector batches -> fixed-length sequences -> LazyTensorStorage."""
from marl_torchrl.data.replay import make_sequence_replay
from marl_torchrl.data.sequences import SequenceBuilder

__all__ = ["SequenceBuilder", "make_sequence_replay"]
