"""Run one BenchMARL experiment and write its timings and greedy returns as JSON (runs in BenchMARL's venv).

Called by ``compare_benchmarl.py`` with the python of ``benchmarks/.venv-benchmarl`` (BenchMARL needs
torchrl < 0.12, so it cannot be imported next to marl-torchrl). Timings are BenchMARL's own per-iteration
timers (``timers/collection_time``, ``timers/training_time``, ``timers/iteration_time``), read by
wrapping its logger; the greedy return of each evaluation is the team return (mean over agents of the
per-agent episode sums, which for VMAS ``balance``'s shared reward is the team reward), averaged over
the evaluation episodes.

    benchmarks/.venv-benchmarl/bin/python benchmarks/benchmarl_driver.py '{"algorithm": "qmix", "frames": 12000}' out.json
"""
from __future__ import annotations

import json
import sys
import tempfile
import time

import benchmarl
import torch
from benchmarl.algorithms import IqlConfig, QmixConfig, VdnConfig
from benchmarl.environments import VmasTask
from benchmarl.experiment import Callback, Experiment, ExperimentConfig
from benchmarl.models import GruConfig, MlpConfig

DEFAULTS = {"algorithm": "qmix", "model": "mlp", "task": "balance", "frames": 120_000, "seed": 0, "envs": 10,
            "frames_per_batch": 6000, "updates": 1000, "batch": 128, "lr": 5e-5, "hidden": 256, "gru_hidden": 128,
            "gamma": 0.99, "tau": 0.005, "eval_episodes": 32, "threads": 1, "buffer": 1_000_000}


def build(args: dict, folder: str):
    torch.set_num_threads(args["threads"])
    exp = ExperimentConfig.get_from_yaml()
    exp.max_n_frames = args["frames"]
    exp.off_policy_collected_frames_per_batch = args["frames_per_batch"]
    exp.off_policy_n_envs_per_worker = args["envs"]
    exp.off_policy_n_optimizer_steps = args["updates"]
    exp.off_policy_train_batch_size = args["batch"]
    exp.off_policy_memory_size = args["buffer"]
    exp.lr, exp.gamma, exp.polyak_tau = args["lr"], args["gamma"], args["tau"]
    exp.evaluation_interval = args["frames"]  # once, at the end
    exp.evaluation_episodes = args["eval_episodes"]
    exp.render, exp.loggers, exp.create_json, exp.save_folder = False, [], True, folder  # no json: no eval
    exp.checkpoint_at_end, exp.checkpoint_interval = False, 0
    task = getattr(VmasTask, args["task"].upper()).get_from_yaml()
    algorithm = {"qmix": QmixConfig, "vdn": VdnConfig, "iql": IqlConfig}[args["algorithm"]].get_from_yaml()
    mlp = MlpConfig(num_cells=[args["hidden"], args["hidden"]], activation_class=torch.nn.Tanh,
                    layer_class=torch.nn.Linear)
    if args["model"] == "gru":
        # GRU(obs -> H) and a linear head: no larger than ours (linear + ReLU, GRU(H), linear head)
        model = GruConfig.get_from_yaml()
        model.hidden_size, model.mlp_num_cells = args["gru_hidden"], []
    else:
        model = mlp
    returns = EvalReturns()
    experiment = Experiment(task=task, algorithm_config=algorithm, model_config=model, seed=args["seed"],
                            config=exp, callbacks=[returns])
    return experiment, returns.values


class EvalReturns(Callback):
    """Per evaluation, the team return of each episode (BenchMARL pickles callbacks: module level)."""

    def __init__(self):
        super().__init__()
        self.values: list[list[float]] = []

    def on_evaluation_end(self, rollouts):
        # [T, A, 1] per episode; BenchMARL evaluates after the first iteration and every interval
        self.values.append([r.get(("next", "agents", "reward")).mean(-2).sum().item() for r in rollouts])


def main() -> None:
    args = {**DEFAULTS, **json.loads(sys.argv[1])}
    with tempfile.TemporaryDirectory() as folder:
        experiment, returns = build(args, folder)
        timers: list[dict] = []
        log = experiment.logger.log

        def record(values: dict, step=None):
            if "timers/iteration_time" in values:
                timers.append({k: float(v) for k, v in values.items() if k.startswith(("timers/", "counters/"))})
            return log(values, step=step)

        experiment.logger.log = record
        t0 = time.perf_counter()
        experiment.run()
        wall = time.perf_counter() - t0
    out = {"library": f"BenchMARL {benchmarl.__version__}", "args": args, "wall_s": wall, "iterations": timers,
           "eval_returns": returns}
    with open(sys.argv[2], "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main()
