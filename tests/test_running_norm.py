"""``model.input_norm=running``: each agent's observation standardised per feature by the statistics of every
observation collected so far, moved once per collected batch (never by a forward pass), carried by
checkpoints, target copies and each stacked seed."""
from __future__ import annotations

import pytest
import torch
from tensordict import TensorDict

from marl_torchrl import keys
from marl_torchrl.algorithms.pqn import build_pqn
from marl_torchrl.checkpoint import load_checkpoint
from marl_torchrl.config import compose_config
from marl_torchrl.config.run import seed_dir
from marl_torchrl.modules.agents import SharedAgentNet
from marl_torchrl.modules.running_norm import RunningStandardise
from marl_torchrl.objectives.targets import TargetUpdater, frozen_copy
from marl_torchrl.registry import ConfigError
from marl_torchrl.seeds.agents import StackedAgentNet
from marl_torchrl.train import main, run
from rollout_helpers import collect_balance


def test_the_statistics_are_the_mean_and_variance_of_every_sample_seen():
    torch.manual_seed(0)
    norm = RunningStandardise(3)
    chunks = [torch.randn(n, 3) * torch.tensor([1.0, 5.0, 0.1]) + torch.tensor([2.0, -3.0, 7.0]) for n in (1, 7, 300, 2)]
    for chunk in chunks:
        norm.update(chunk.reshape(-1, 1, 3) if len(chunk) > 1 else chunk)  # any leading shape
    seen = torch.cat(chunks).double()
    torch.testing.assert_close(norm.mean.double(), seen.mean(0), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(norm.var.double(), seen.var(0, unbiased=False), rtol=1e-5, atol=1e-6)
    assert int(norm.count) == 310
    x = torch.randn(4, 3)
    torch.testing.assert_close(norm(x), (x - norm.mean) / torch.sqrt(norm.var + norm.eps))
    before = [t.clone() for t in norm.buffers()]
    norm(torch.randn(50, 3) * 100)  # a forward pass never moves the statistics
    assert all(torch.equal(a, b) for a, b in zip(before, norm.buffers()))
    with pytest.raises(ValueError, match=r"\[\.\.\., 3\] samples"):
        norm.update(torch.zeros(2, 4))


def test_the_agent_network_standardises_by_its_statistics_and_only_observe_moves_them():
    torch.manual_seed(1)
    net = SharedAgentNet(4, 2, 3, hidden_dim=8, input_norm="running")
    plain = SharedAgentNet(4, 2, 3, hidden_dim=8)
    plain.load_state_dict({k: v for k, v in net.state_dict().items() if not k.startswith("in_norm")})
    obs = torch.randn(6, 5, 2, 4) * 3 + 1
    torch.testing.assert_close(net.unroll(obs)[0], plain.unroll(obs)[0])  # the identity before any batch
    net.observe(obs)
    assert int(net.in_norm.count) == 6 * 5 * 2  # every agent's observation at every step
    standardised = (obs - obs.mean((0, 1, 2))) / torch.sqrt(obs.var((0, 1, 2), unbiased=False) + 1e-5)
    torch.testing.assert_close(net.unroll(obs)[0], plain.unroll(standardised)[0], rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match=r"\[\.\.\., 2, 4\]"):
        net.observe(torch.zeros(3, 2, 5))
    SharedAgentNet(4, 2, 3, input_norm="layer").observe(obs)  # stateless norms ignore it
    with pytest.raises(ConfigError, match="input_norm must be one of"):
        SharedAgentNet(4, 2, 3, input_norm=True)


def test_the_recurrent_contract_holds_between_batches_and_observe_changes_the_function():
    def warm(parts):  # statistics far from the identity before the policy acts
        obs = torch.randn(64, parts.loss.agent_net.n_agents, parts.loss.agent_net.obs_dim) * 4 + 2
        parts.observe(TensorDict({keys.OBS: obs}, [64]))

    parts, batches = collect_balance(build_pqn, {"name": "pqn", "mixer": "vdn", "eps_start": 0.5, "eps_end": 0.5,
                                                 "minibatches": 2}, {"hidden_dim": 16, "input_norm": "running"},
                                     n_batches=1, steps=9, prepare=warm)
    loss, batch = parts.loss, batches[0]
    assert parts.observers == [loss.agent_net] and int(loss.agent_net.in_norm.count) == 64 * 3
    with torch.no_grad():
        q, _ = loss.agent_values(batch)
    torch.testing.assert_close(q, batch[keys.ACTION_VALUE], rtol=1e-5, atol=1e-5)
    parts.observe(batch)  # the loop's call for this batch, before its updates
    assert int(loss.agent_net.in_norm.count) == 64 * 3 + batch.numel() * 3
    with torch.no_grad():
        assert not torch.allclose(loss.agent_values(batch)[0], q, atol=1e-4)


def test_polyak_updates_copy_the_statistics_and_stacked_seeds_use_their_own():
    torch.manual_seed(2)
    nets = [SharedAgentNet(3, 2, 4, hidden_dim=8, input_norm="running") for _ in range(2)]
    for i, net in enumerate(nets):
        net.observe(torch.randn(20, 2, 3) * (i + 1) + 3 * i)
    target = frozen_copy(SharedAgentNet(3, 2, 4, hidden_dim=8, input_norm="running"))
    TargetUpdater([(nets[0], target)], tau=0.1).step()
    assert all(torch.equal(getattr(target.in_norm, b), getattr(nets[0].in_norm, b)) for b in ("mean", "var", "count"))
    obs, h0 = torch.randn(2 * 3, 5, 2, 3), torch.randn(2 * 3, 2, 8)  # 2 seeds x 3 rows
    q = StackedAgentNet(nets).unroll(obs, h0)[0]
    for k, net in enumerate(nets):
        torch.testing.assert_close(q[3 * k:3 * (k + 1)], net.unroll(obs[3 * k:3 * (k + 1)], h0[3 * k:3 * (k + 1)])[0],
                                   rtol=1e-5, atol=1e-5)


TINY = ["env=matrix/two_step", "env.num_envs=8", "collector.frames_per_batch=32", "total_frames=96",
        "model.hidden_dim=8", "model.input_norm=running", "logger=[csv]", "eval.interval_frames=0", "threads=1"]
QMIX = ["algorithm=qmix", "replay.batch_size=4", "replay.warmup=4", "algorithm.target_hard_interval=null",
        "algorithm.target_tau=0.05"]


def _counts(path) -> dict[str, int]:
    loss = load_checkpoint(path / "models" / "final_model.pt")["parts"]["loss"]
    return {k.removesuffix(".in_norm.count"): int(v) for k, v in loss.items() if k.endswith("in_norm.count")}


@pytest.mark.parametrize("algorithm", [["algorithm=pqn_vdn", "algorithm.minibatches=2"], QMIX])
def test_a_run_checkpoints_the_statistics_of_every_collected_observation(tmp_path, algorithm):
    run(compose_config(*algorithm, *TINY), tmp_path)
    counts = _counts(tmp_path)
    assert counts.pop("agent_net") == 96 * 2  # 3 batches of 32 frames, 2 agents
    assert all(c == 96 * 2 for c in counts.values())  # QMIX's target copy: Polyak copies the statistics


def test_resumed_and_stacked_runs_continue_each_learners_statistics(tmp_path):
    run(compose_config(*QMIX, *TINY, "total_frames=64"), tmp_path / "resumed")
    run(compose_config(*QMIX, *TINY, f"resume={tmp_path / 'resumed'}"), tmp_path / "resumed")
    assert _counts(tmp_path / "resumed")["agent_net"] == 96 * 2
    run(compose_config(*QMIX, *TINY, "seed=3", "num_seeds=2"), tmp_path / "k")
    assert [_counts(seed_dir(tmp_path / "k", s))["agent_net"] for s in (3, 4)] == [96 * 2, 96 * 2]


@pytest.mark.parametrize("value", ["true", "batch"])
def test_an_unknown_input_norm_is_one_error_line(capsys, value):
    with pytest.raises(SystemExit) as exit_info:
        main(["algorithm=pqn_vdn", f"model.input_norm={value}"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: model.input_norm must be layer or running or null") and "\n" not in err, err
