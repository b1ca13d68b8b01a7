"""The training loop of ``num_seeds=K``: K single runs in one process, their gradient steps as one computation.

Seed ``s`` (``seed, seed + 1, ..., seed + K - 1``) is an ordinary :class:`~marl_torchrl.loop.Run`, set up by
:func:`~marl_torchrl.loop.setup` from the config it would run with alone (:func:`seed_config`) in its own
dir ``<run dir>/seed_<s>``: its env copies (``env.num_envs`` of them, seeded from ``s``; K x num_envs in
all), its parameters, optimiser, target networks, exploration schedule, replay, evaluation env, loggers and
checkpoints. Each iteration every seed collects its batch with its own policy (batched where the env family
can: one env of K x num_envs and one policy forward, each seed's block reset and explored on its own
stream, :mod:`~marl_torchrl.seeds.collection`) and records it (the pieces of :mod:`marl_torchrl.iteration`,
as a single run); then the seeds' gradient steps run together, one
:meth:`~marl_torchrl.seeds.stacked.StackedLearners.step` for all K per update; then each seed finishes its
iteration (metrics, evaluation, log row, checkpoint) as a single run does.

Every draw of seed ``s`` (env, exploration, replay sampling, evaluation) comes from its own stream of
torch's generator (:class:`~marl_torchrl.seeds.streams.RngStreams`), in its single run's order: seed ``s``
in a K-run starts from exactly the parameters and env seeds of seed ``s`` alone, and follows it up to the
float rounding of the stacked kernels (``tests/test_stacked_loop.py``). Its run dir is a single run's
(same files, same columns; ``models/`` holds its own checkpoints, which evaluate and resume as a single
run's); ``marl-report <run dir>`` reads K runs. ``resume=<run dir>`` continues every seed from its own
newest checkpoint (``resume=auto``: :mod:`~marl_torchrl.seeds.resume`). On-policy PQN takes the same loop:
each seed's rollout path yields its ``epochs x minibatches`` minibatches on its own stream, and the j-th of
every seed is one stacked step (:class:`~marl_torchrl.seeds.pqn_loss.StackedPQNLoss`).
"""
from __future__ import annotations

import dataclasses
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from marl_torchrl.config import RunConfig
from marl_torchrl.config.run import seed_dir
from marl_torchrl.faults import NonFiniteError, RunInterrupted, StopSignals
from marl_torchrl.iteration import (
    IterationTimes, check_parameters, close_run, finish_iteration, finished, interrupt_checkpoint, note_update,
    record_batch,
)
from marl_torchrl.loop import Run, setup, start_schedule
from marl_torchrl.registry import ConfigError
from marl_torchrl.seeds.collection import make_collection
from marl_torchrl.seeds.memory import keep_freed_memory
from marl_torchrl.seeds.stacked import StackedLearners
from marl_torchrl.seeds.streams import RngStreams

__all__ = ["StackedRun", "seed_config", "setup_seeds", "train_seeds"]


def seed_config(cfg: RunConfig, seed: int) -> RunConfig:
    """The config seed ``seed`` of a K-run runs with: the K-run's, with ``seed``, ``num_seeds=1`` and (when
    resuming) its own seed dir; a single run of it is that seed alone."""
    resume = str(seed_dir(cfg.resume, seed)) if cfg.resume else None
    return dataclasses.replace(cfg, seed=seed, num_seeds=1, resume=resume)


@dataclass
class StackedRun:
    """The K seeds' runs, their random streams and the stacked learner over their parts.

    >>> import tempfile
    >>> from marl_torchrl.config import compose_config
    >>> cfg = compose_config("algorithm=vdn", "env=matrix/one_step", "num_seeds=2", "seed=5", "total_frames=64",
    ...                      "env.num_envs=8", "collector.frames_per_batch=32", "replay.batch_size=8",
    ...                      "replay.warmup=8", "model.type=mlp", "model.hidden_dim=8", "eval.episodes=4")
    >>> out = tempfile.mkdtemp()
    >>> metrics = train_seeds(setup_seeds(cfg, out))
    >>> sorted(metrics), metrics[6]["frames"], sorted(p.name for p in Path(out).iterdir())
    ([5, 6], 64, ['seed_5', 'seed_6'])
    """

    cfg: RunConfig
    run_dir: Path
    seeds: list[int]
    runs: list[Run]
    streams: RngStreams
    learners: StackedLearners
    _subsets: dict[tuple[int, ...], StackedLearners] = field(default_factory=dict)

    def learners_for(self, ks: tuple[int, ...]) -> StackedLearners:
        """The stacked learner of the seeds ``ks`` (all K, or those with an update left this iteration)."""
        if len(ks) == len(self.runs):
            return self.learners
        if ks not in self._subsets:
            self._subsets[ks] = StackedLearners([self.runs[k].parts for k in ks])
        return self._subsets[ks]


def setup_seeds(cfg: RunConfig, run_dir: str | Path) -> StackedRun:
    """Set up each seed as its single run (:func:`~marl_torchrl.loop.setup` of :func:`seed_config`, torch
    seeded with its seed first) and keep its random stream; nothing is collected here."""
    run_dir = Path(run_dir)
    seeds = list(range(cfg.seed, cfg.seed + cfg.num_seeds))
    streams, runs = RngStreams(len(seeds)), []
    keep_freed_memory()
    try:
        for k, seed in enumerate(seeds):
            runs.append(setup(seed_config(cfg, seed), seed_dir(run_dir, seed)))
            streams.save(k)
        frames = {r.cfg.seed: r.state.frames for r in runs}
        if len(set(frames.values())) > 1:
            raise ConfigError(f"the seeds' newest checkpoints in {cfg.resume} are at different frames {frames}; "
                              "resume each seed alone (resume=<run dir>/seed_<s> num_seeds=1) to the same point")
        learners = StackedLearners([r.parts for r in runs])
    except BaseException:
        for r in runs:
            r.loggers.close()
        raise
    return StackedRun(cfg, run_dir, seeds, runs, streams, learners)


@contextmanager
def _seed_faults(seed: int):
    """A non-finite fault of one seed stops the K-run, naming the seed."""
    try:
        yield
    except NonFiniteError as err:
        raise NonFiniteError(f"{err.metric} of seed {seed}", err.value, err.iteration, err.checkpoint) from None


def _updates(sr: StackedRun) -> list[list[dict]]:
    """This iteration's gradient steps of all seeds: the j-th update of every seed that has one is one
    stacked step; each seed samples its own batches from its own replay on its own random stream."""
    gens = [run.data.batches() for run in sr.runs]
    logs: list[list[dict]] = [[] for _ in sr.runs]
    while True:
        batches = {}
        for k, gen in enumerate(gens):
            if gen is not None:
                with sr.streams.use(k):
                    batch = next(gen, None)
                if batch is None:
                    gens[k] = None
                else:
                    batches[k] = batch
        if not batches:
            break
        ks = tuple(batches)
        for k, out in zip(ks, sr.learners_for(ks).step([batches[k] for k in ks])):
            logs[k].append(out)
            with _seed_faults(sr.seeds[k]):
                note_update(sr.runs[k], out)
    for seed, run in zip(sr.seeds, sr.runs):
        with _seed_faults(seed):
            check_parameters(run)
    return logs


def train_seeds(sr: StackedRun) -> dict[int, dict[str, float]]:
    """Collect and train every seed until ``total_frames``; returns each seed's last logged metrics.

    Collection is batched (one env of K x num_envs, one policy forward) where the env family can, else
    per seed (:func:`~marl_torchrl.seeds.collection.make_collection`; one line on stderr says which).
    A stop signal checkpoints every seed at the end of the iteration
    (:class:`~marl_torchrl.faults.RunInterrupted`, naming the K-run's dir, which ``resume=`` takes)."""
    runs, streams, total = sr.runs, sr.streams, sr.cfg.total_frames
    collection = None
    from tqdm import tqdm

    bar = tqdm(total=total, initial=runs[0].state.frames, unit="frames per seed", dynamic_ncols=True,
               disable=not sys.stderr.isatty())
    metrics: list[dict[str, float]] = [{} for _ in runs]
    at_once = False
    try:
        collection = make_collection(sr)
        print(collection.describe(), file=sys.stderr, flush=True)
        for k, run in enumerate(runs):
            with streams.use(k):
                start_schedule(run)
        with StopSignals(quiet=False) as stop:
            t_start = t_mark = time.perf_counter()
            while True:
                collected = collection.next()
                if collected is None:
                    break
                batches, seconds = collected
                frames = [b.numel() for b in batches]
                for k, run in enumerate(runs):
                    with streams.use(k):
                        metrics[k] = record_batch(run, batches[k])
                t_train = time.perf_counter()
                train_logs = _updates(sr)
                t_done = time.perf_counter()
                collection.update_weights()
                for k, run in enumerate(runs):
                    with streams.use(k), _seed_faults(sr.seeds[k]):
                        times = IterationTimes(seconds[k], t_done - t_train, t_done - t_mark, t_done - t_start)
                        metrics[k] = finish_iteration(run, metrics[k], train_logs[k], frames[k], times)
                bar.update(frames[0])
                t_mark = time.perf_counter()
                done = all(finished(run) for run in runs)  # lockstep: the same frames and clock for all
                if stop.requested is not None and not done:
                    for k, run in enumerate(runs):
                        with streams.use(k):
                            interrupt_checkpoint(run)
                    raise RunInterrupted(stop.requested, runs[0].state.frames, sr.run_dir)
                if done:  # also before the collectors' budget: train.max_seconds
                    break
            for k, run in enumerate(runs):
                with streams.use(k):
                    run.checkpoint("final_model.pt")
    except KeyboardInterrupt:
        at_once = True
        raise
    finally:
        if collection is not None:
            collection.shutdown()
        bar.close()
        if not at_once:
            for run in runs:
                close_run(run)
    return dict(zip(sr.seeds, metrics))
