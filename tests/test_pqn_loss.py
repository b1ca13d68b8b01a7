"""PQN's loss: Q(lambda) against a plain forward-view reference, bootstrapping at truncated steps from their
own final observation, and the recurrent contract (the loss's Q-values are the acting policy's)."""
import pytest
import torch
from rollout_helpers import collect_balance

from marl_torchrl import keys
from marl_torchrl.algorithms.pqn import build_pqn
from marl_torchrl.modules.agents import SharedAgentNet
from marl_torchrl.objectives.pqn import PQNLoss, random_rollout
from marl_torchrl.objectives.rollout_ops import q_lambda_returns


def forward_view(r, term, done, v, gamma, lam):
    """G^lambda_t = (1 - lam) sum_{n<N} lam^(n-1) G^(n)_t + lam^(N-1) G^(N)_t, N steps to the episode's end in
    the rollout; G^(n)_t = sum_{k<n} gamma^k r_{t+k} + gamma^n (1 - term_{t+n-1}) V_{t+n-1}. Python loops."""
    E, T, X = v.shape
    out = torch.zeros(E, T, X, dtype=torch.float64)
    for e in range(E):
        for t in range(T):
            end = t
            while end < T - 1 and not done[e, end, 0]:
                end += 1
            N = end - t + 1
            for x in range(X):
                def n_step(n):
                    g = sum(gamma ** k * float(r[e, t + k, 0]) for k in range(n))
                    last = t + n - 1
                    return g + gamma ** n * (1.0 - float(term[e, last, 0])) * float(v[e, last, x])
                total = sum((1 - lam) * lam ** (n - 1) * n_step(n) for n in range(1, N))
                out[e, t, x] = total + lam ** (N - 1) * n_step(N)
    return out


@pytest.mark.parametrize("lam", [0.0, 0.85, 1.0])
def test_q_lambda_matches_forward_view(lam):
    torch.manual_seed(0)
    E, T, X = 3, 9, 2
    r, v = torch.randn(E, T, 1, dtype=torch.float64), torch.randn(E, T, X, dtype=torch.float64)
    done = torch.zeros(E, T, 1, dtype=torch.bool)
    term = torch.zeros_like(done)
    done[0, 2], term[0, 2] = True, True  # terminated inside the rollout
    done[0, 5] = True  # truncated inside the rollout
    done[1, 3], done[1, 4], term[1, 4] = True, True, True  # a one-step episode that terminates
    done[2, T - 1], term[2, T - 1] = True, True  # terminated at the rollout's last step
    got = q_lambda_returns(r, term, done, v, gamma=0.9, lam=lam)
    torch.testing.assert_close(got, forward_view(r, term, done, v, 0.9, lam))
    assert torch.allclose(got[0, 2], r[0, 2])  # terminated: the reward only
    assert torch.allclose(got[0, 5], r[0, 5] + 0.9 * v[0, 5])  # truncated: bootstraps from its own next value
    assert torch.allclose(got[1, T - 1], r[1, T - 1] + 0.9 * v[1, T - 1])  # the rollout's end bootstraps


def test_truncated_step_bootstraps_from_its_final_observation():
    torch.manual_seed(1)
    net = SharedAgentNet(3, 2, 4, rnn=False)
    loss = PQNLoss(net, None, gamma=0.5, td_lambda=0.0, reward_scale=2.0)
    td = random_rollout(envs=4, steps=6, n_agents=2, obs_dim=3, n_actions=4, state_dim=5, p_done=0.5)
    target = loss.targets(td, None)
    with torch.no_grad():
        v_final = net(td["next", *keys.OBS])[0].max(-1).values  # [E, T, A]: the next obs of each step
    term = td["next", "terminated"].float()
    expected = 2.0 * td["next", "reward"] + 0.5 * (1 - term) * v_final
    torch.testing.assert_close(target, expected)
    assert td["next", "truncated"].any() and td["next", "terminated"].any()


def _collect(seed=0, n_batches=2, num_envs=4, steps=9, mixer="qmix", model="gru"):
    return collect_balance(build_pqn, {"name": "pqn", "mixer": mixer, "eps_start": 0.5, "eps_end": 0.5, "minibatches": 2},
                           {"type": model, "hidden_dim": 16}, seed=seed, num_envs=num_envs, max_steps=5, steps=steps,
                           n_batches=n_batches)


def test_recurrent_contract_loss_q_equals_acting_q():
    parts, batches = _collect()
    loss = parts.loss
    assert loss.agent_net.rnn
    for batch in batches:
        init = batch["is_init"].squeeze(-1)
        assert init[:, 1:].any()  # episodes restart inside the rollout
        with torch.no_grad():
            q, h_after = loss.agent_values(batch)
        torch.testing.assert_close(q, batch[keys.ACTION_VALUE], rtol=1e-5, atol=1e-5)
        # a minibatch of whole env rows, as the loop yields them, unrolls to the same values
        idx = torch.tensor([3, 1])
        with torch.no_grad():
            q_rows, _ = loss.agent_values(batch[idx])
        torch.testing.assert_close(q_rows, batch[keys.ACTION_VALUE][idx], rtol=1e-5, atol=1e-5)
        # the hidden state after each step is the one the collector carried to the next step
        torch.testing.assert_close(h_after, batch["next", *keys.HIDDEN], rtol=1e-5, atol=1e-5)
    # the second rollout starts mid-episode from a carried, non-zero hidden state
    assert (~batches[1]["is_init"][:, 0, 0]).any()
    assert batches[1][keys.HIDDEN][:, 0].abs().sum() > 0


@pytest.mark.parametrize("mixer,model", [("qmix", "gru"), (None, "mlp"), ("qplex", "gru")])
def test_gradient_step_on_a_rollout_minibatch(mixer, model):
    from marl_torchrl.update import gradient_step

    parts, batches = _collect(n_batches=1, mixer=mixer, model=model)
    before = [p.detach().clone() for p in parts.loss.parameters()]
    out = gradient_step(parts, batches[0][torch.tensor([0, 2])])
    assert torch.isfinite(out["loss"]) and "skipped" not in out
    assert any(not torch.equal(b, p) for b, p in zip(before, parts.loss.parameters()))


def test_reset_aware_unroll_gives_the_stepwise_values_and_gradients():
    from marl_torchrl.objectives.rollout_ops import unroll_stepwise, unroll_with_resets

    torch.manual_seed(0)
    net = SharedAgentNet(3, 2, 4, hidden_dim=8)
    obs, h0 = torch.randn(6, 9, 2, 3), torch.randn(6, 2, 8)
    init = torch.rand(6, 9, 1) < 0.2  # episodes start anywhere, also at a row's first step
    init[0, 0] = True
    grads = []
    for unroll in (unroll_with_resets, unroll_stepwise):
        net.zero_grad()
        q, h = unroll(net, obs, h0, init)
        (q.square().sum() + h.sum()).backward()
        grads.append([p.grad.clone() for p in net.parameters()])
        grads.append((q.detach(), h.detach()))
    torch.testing.assert_close(grads[1], grads[3], rtol=1e-5, atol=1e-5)
    for a, b in zip(grads[0], grads[2]):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("model", ["gru", "mlp"])
def test_one_unroll_gives_the_next_observations_values_of_a_second_pass(model):
    """On collected rollouts (episodes end, truncated and terminated, inside the rows), the next-observation
    Q-values slotted into the one unroll equal the network on each next observation from the state after
    its step; so do the targets, and the online Q-values and their gradients equal the stepwise unroll's."""
    from marl_torchrl.objectives.rollout_ops import unroll_stepwise, unroll_with_next

    parts, batches = _collect(n_batches=2, mixer="qmix", model=model, steps=11)
    loss, net = parts.loss, parts.loss.agent_net
    for batch in batches:
        assert batch["next", "done"][:, :-1].any()
        obs, nxt = batch[keys.OBS], batch["next", *keys.OBS]
        h0 = batch[keys.HIDDEN][:, 0] if net.rnn else None
        args = (obs, h0, batch["is_init"])
        grads = []
        for unroll in ("one", "stepwise"):
            net.zero_grad()
            if unroll == "one":
                q, h, q_next = unroll_with_next(net, obs, nxt, *args[1:], batch["next", "done"])
            else:
                q, h = unroll_stepwise(net, *args) if net.rnn else (net(obs)[0], None)
            q.square().sum().backward()
            grads.append([p.grad.clone() for p in net.parameters()])
            if unroll == "one":
                with torch.no_grad():
                    q_ref = net(nxt, None if h is None else h.detach())[0]
                torch.testing.assert_close(q_next, q_ref, rtol=1e-5, atol=1e-5)
                torch.testing.assert_close(loss.targets(batch, q_ref), loss.targets(batch), rtol=1e-5, atol=1e-5)
        for a, b in zip(*grads):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
