"""Shared test helpers: compose the real Hydra config with overrides, as the CLI would."""
from __future__ import annotations

import os

import pytest
import torch
from hydra import compose, initialize_config_dir

from marl_torchrl.config import CONFIG_DIR

os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("RL_WARNINGS", "False")


def compose_config(overrides: list[str]):
    """The config ``marl-train <overrides>`` would run with."""
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose("config", overrides=list(overrides))


@pytest.fixture(autouse=True)
def _restore_torch_threads():
    """A run applies ``threads=`` to the whole process: every test leaves torch's thread count as it found it."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def make_cfg():
    return compose_config
