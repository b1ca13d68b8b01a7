"""Tensordict key names, in one place.

Every component reads and writes these names; losses let users rename them with ``set_keys``.

>>> from marl_torchrl import keys
>>> keys.OBS
('agents', 'observation')
>>> keys.as_tuple("reward"), keys.as_tuple(keys.OBS)
(('reward',), ('agents', 'observation'))
"""
GROUP = "agents"

OBS = (GROUP, "observation")
ACTION = (GROUP, "action")
ACTION_MASK = (GROUP, "action_mask")
AGENT_REWARD = (GROUP, "reward")
ACTION_VALUE = (GROUP, "action_value")
CHOSEN_ACTION_VALUE = (GROUP, "chosen_action_value")
HIDDEN = (GROUP, "rnn_hidden")
ACTOR_OUTPUT = (GROUP, "actor_output")  # a deterministic actor's raw (pre-squash) output

STATE = "state"
REWARD = "reward"
DONE = "done"
TERMINATED = "terminated"
TRUNCATED = "truncated"
IS_INIT = "is_init"
STEP_COUNT = "step_count"
EPISODE_REWARD = "episode_reward"

# Sequence-replay keys (see marl_torchrl.data): a step is valid (not padding) where MASK is True.
MASK = "mask"


def as_tuple(key) -> tuple:
    """A nested key as a tuple (``"reward"`` -> ``("reward",)``), e.g. to prefix it with ``"next"``."""
    return (key,) if isinstance(key, str) else tuple(key)
