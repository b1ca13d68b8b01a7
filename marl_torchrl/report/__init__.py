"""``marl-report``: aggregate many ``marl-train`` runs with honest statistics (numpy + matplotlib, no torch).

:mod:`~marl_torchrl.report.collect` reads run dirs, :mod:`~marl_torchrl.report.stats` holds IQM / bootstrap
/ probability of improvement, :mod:`~marl_torchrl.report.curves` and :mod:`~marl_torchrl.report.tables`
build the outputs, :mod:`~marl_torchrl.report.cli` is the command.

>>> from marl_torchrl.report import iqm
>>> iqm([0.0, 1.0, 2.0, 3.0])
1.5
"""
from marl_torchrl.report.stats import iqm, prob_improvement

__all__ = ["iqm", "prob_improvement"]
