"""The stacked GRU of the seed stack: :func:`~marl_torchrl.modules.gru_kernel.stacked_gru` (``K`` weight
sets at once, hand-written backward), kept under this name for the seed modules and their users."""
from marl_torchrl.modules.gru_kernel import stacked_gru

__all__ = ["stacked_gru"]
