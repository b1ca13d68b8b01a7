"""What scripted teams win on a SMAX map against SMAX's heuristic enemy: the evidence behind the SMAX
diagnosis in ``benchmarks/README.md`` (how much of the gap to a perfect win rate a simple tactic closes).

Policies (each reads SMAX's true state, not the agents' observations; actions as SMAX decodes them:
moves 0-3 along (0,1), (1,0), (0,-1), (-1,0), 4 stop, 5+i attack enemy i):

- ``random``: a uniformly random available action;
- ``heuristic``: SMAX's own heuristic (the enemy's), playing the allies: the mirror match;
- ``focus``: every ally in range of a living enemy shoots the in-range enemy with the least health
  (focus fire); an ally with none in range walks towards the living enemy nearest to it;
- ``focus_kite``: ``focus``, but an ally whose weapon is cooling down steps away from the nearest enemy.

With probability ``eps`` an ally instead takes a random available action (an epsilon-greedy learner's noise).
Writes ``benchmarks/results/smax_scripted.csv`` (win rate with a 95% Wilson interval, return, length).

    python benchmarks/smax_scripted.py --map 3m --episodes 512
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from marl_torchrl.report.stats import wilson_ci as wilson  # noqa: E402
from marl_torchrl.report.tables import write_csv  # noqa: E402


def build(map_name: str, policy: str, eps: float):
    """A jitted ``play(key) -> (won, return, length)`` of one episode of ``policy`` on ``map_name``."""
    from marl_torchrl.envs.smax import OPTIONS, _import_smax

    jax, smax = _import_smax()
    jnp = jax.numpy
    env = smax.HeuristicEnemySMAX(scenario=smax.map_name_to_scenario(map_name), **OPTIONS)
    na, moves = env.num_allies, env.num_movement_actions
    dirs = jnp.array([[0.0, 1.0], [1.0, 0.0], [0.0, -1.0], [-1.0, 0.0]])
    ally_policy = smax.heuristic_enemy.create_heuristic_policy(env, 0, attack_mode="closest")
    init_policy_state = smax.heuristic_enemy.get_heuristic_policy_initial_state()

    def toward(vec):  # the move action most aligned with ``vec``
        return jnp.argmax(dirs @ vec)

    def scripted(key, s, pstate):
        u = s.state
        pos, alive, health = u.unit_positions, u.unit_alive, u.unit_health
        ranges = env.unit_type_attack_ranges[u.unit_types]
        ally_pos, enemy_pos = pos[:na], pos[na:]
        enemy_alive, enemy_health = alive[na:], health[na:]
        dist = jnp.linalg.norm(ally_pos[:, None] - enemy_pos[None], axis=-1)  # [na, ne]
        in_range = (dist < ranges[:na, None]) & enemy_alive[None]
        target = jnp.argmin(jnp.where(in_range, enemy_health[None], jnp.inf), axis=1)
        nearest = jnp.argmin(jnp.where(enemy_alive[None], dist, jnp.inf), axis=1)
        step_in = jax.vmap(toward)(enemy_pos[nearest] - ally_pos)
        act = jnp.where(in_range.any(1), moves + target, step_in)
        if policy == "focus_kite":
            cooling = u.unit_weapon_cooldowns[:na] > 0
            act = jnp.where(cooling & in_range.any(1), jax.vmap(toward)(ally_pos - enemy_pos[nearest]), act)
        return act, pstate

    def heuristic(key, s, pstate):
        obs = env.get_obs(s)
        keys = jax.random.split(key, na)
        out = [ally_policy(keys[i], pstate[i], obs[a]) for i, a in enumerate(env.agents)]
        return jnp.stack([o[0] for o in out]), [o[1] for o in out]

    def random_act(key, s, pstate):
        return jnp.zeros(na, jnp.int32), pstate  # replaced by the random draw below (eps = 1)

    pick = {"focus": scripted, "focus_kite": scripted, "heuristic": heuristic, "random": random_act}[policy]
    noise = 1.0 if policy == "random" else eps

    def play(key):
        key, k0 = jax.random.split(key)
        _, s = env.reset(k0)
        carry = (key, s, [init_policy_state] * na, jnp.array(False), jnp.array(False), 0.0, 0)

        def body(c):
            key, s, pstate, done, won, ret, length = c
            key, ka, kr, ke, ks = jax.random.split(key, 5)
            act, pstate = pick(ka, s, pstate)
            avail = env.get_avail_actions(s)
            mask = jnp.stack([avail[a] for a in env.agents]).astype(float)
            rand = jax.vmap(lambda k, m: jax.random.choice(k, m.shape[0], p=m / m.sum()))(
                jax.random.split(kr, na), mask)
            act = jnp.where(jax.random.uniform(ke, (na,)) < noise, rand, act)
            _, s, reward, dones, _ = env.step_env(ks, s, {a: act[i] for i, a in enumerate(env.agents)})
            u = s.state
            won = u.unit_alive[na:].sum() == 0
            return key, s, pstate, dones["__all__"], won & u.unit_alive[:na].any(), ret + reward[env.agents[0]], \
                length + 1

        out = jax.lax.while_loop(lambda c: ~c[3] & (c[6] < env.max_steps), body, carry)
        return out[4], out[5], out[6]

    return jax.jit(jax.vmap(play)), jax


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--map", default="3m")
    ap.add_argument("--episodes", type=int, default=512)
    ap.add_argument("--policies", nargs="+", default=["random", "heuristic", "focus", "focus_kite"])
    ap.add_argument("--eps", type=float, nargs="+", default=[0.0, 0.05])
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rows = []
    for policy in args.policies:
        for eps in ([1.0] if policy == "random" else args.eps):
            play, jax = build(args.map, policy, eps)
            won, ret, length = play(jax.random.split(jax.random.PRNGKey(args.seed), args.episodes))
            wins = int(won.sum())
            lo, hi = wilson(wins, args.episodes)
            rows.append({"map": args.map, "policy": policy, "eps": eps, "episodes": args.episodes,
                         "win_rate": round(wins / args.episodes, 4), "win_lo": round(lo, 4), "win_hi": round(hi, 4),
                         "return": round(float(ret.mean()), 4), "length": round(float(length.mean()), 2)})
            print(rows[-1], flush=True)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"smax_scripted_{args.map}.csv"
    write_csv(rows, list(rows[0]), out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
