"""marl-torchrl: cooperative multi-agent RL by value factorisation on TorchRL."""
__version__ = "0.1.0"
