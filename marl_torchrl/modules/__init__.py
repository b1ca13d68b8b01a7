"""Modules to drop into any TorchRL pipeline: shared agent networks, their recurrence, and mixers.

>>> from marl_torchrl.modules import QMixer, VDNMixer, SharedAgentNet
>>> QMixer(n_agents=2, state_dim=4).n_agents
2
"""
from marl_torchrl.modules.agents import SharedAgentNet
from marl_torchrl.modules.mixers import DOPMixer, Mixer, NonMonotonicMixer, QMixer, VDNMixer, make_mixer
from marl_torchrl.modules.recurrence import AgentNetModule, hidden_state_primer

__all__ = ["SharedAgentNet", "AgentNetModule", "hidden_state_primer", "Mixer", "QMixer", "NonMonotonicMixer", "DOPMixer", "VDNMixer", "make_mixer"]
