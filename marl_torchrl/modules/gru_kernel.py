"""A GRU over K stacked parameter sets (seeds) at once, with a hand-written backward and optional resets.

:func:`stacked_gru` runs ``K`` independent GRUs, seed ``k`` with its own weights on its own inputs, as one
computation: every time step is one batched matrix product (``torch.baddbmm`` over the seed dimension)
and a handful of elementwise ops on ``[K, R, H]`` tensors. The numbers are ``nn.GRU``'s (gate order
``r, z, n``; ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``; ``h' = (1 - z) * n + z * h``) up to float
rounding.

Why a hand-written backward: the same loop written with torch ops and left to autograd slices the whole
``[K, T, R, 3H]`` input projection at every step, and the backward of each slice writes a full-size zero
tensor (quadratic in ``T``: 16x slower than ``nn.GRU`` at balance's sizes, measured); ``torch.func.vmap``
of ``nn.GRU`` works only under ``grad`` and is no faster than K separate GRUs. The backward below is 9
ops per step, and the weight gradients are one matrix product over all steps.

Layout, per seed ``k``: inputs ``x [K, T, R, I]`` (time before rows), start state ``h0 [K, R, H]``,
``w_ih [K, I, 3H]``, ``w_hh [K, H, 3H]`` (``nn.GRU``'s weights transposed), biases ``[K, 1, 3H]``; the
output is the state after every step, ``[K, T, R, H]``.

Resets: ``keep [K, T, R, 1]`` (optional) multiplies the state before each step, so ``keep = 0`` at an
episode's first step starts it from zero, in the middle of a row (PQN's rollouts, whose episodes end and
restart inside each row) without cutting the row into padded segments. ``K = 1`` is a single GRU: the
shared agent network's reset-aware unroll (:meth:`~marl_torchrl.modules.agents.SharedAgentNet.unroll`).

>>> import torch
>>> gru = torch.nn.GRU(3, 4)
>>> x = torch.randn(6, 5, 3)                                   # [T, R, I]
>>> w = lambda p: p.detach().t().unsqueeze(0)                  # [1, in, 3H]
>>> b = lambda p: p.detach().view(1, 1, -1)
>>> hs = stacked_gru(x.unsqueeze(0), torch.zeros(1, 5, 4), w(gru.weight_ih_l0), b(gru.bias_ih_l0),
...                  w(gru.weight_hh_l0), b(gru.bias_hh_l0))
>>> torch.allclose(hs[0], gru(x)[0], atol=1e-6)
True
>>> keep = torch.ones(1, 6, 5, 1); keep[:, 3] = 0                # every row restarts at step 3
>>> hs = stacked_gru(x.unsqueeze(0), torch.zeros(1, 5, 4), w(gru.weight_ih_l0), b(gru.bias_ih_l0),
...                  w(gru.weight_hh_l0), b(gru.bias_hh_l0), keep)
>>> torch.allclose(hs[0, 3:], gru(x[3:])[0], atol=1e-6)
True
"""
from __future__ import annotations

import torch

__all__ = ["stacked_gru"]

_sigmoid_backward = torch.ops.aten.sigmoid_backward.grad_input
_tanh_backward = torch.ops.aten.tanh_backward.grad_input


def _forward(x, h0, w_ih, b_ih, w_hh, b_hh, keep, save: bool):
    """The unroll; with ``save`` also what the backward reads (gates, ``h - n``, the recurrent products, and
    with ``keep`` each step's input state, the reset one).

    The input projection of all steps is one product that also adds the biases that sit outside the
    reset gate (``b_i + b_h`` of r and z, ``b_in``); each step's recurrent product adds ``b_hn`` only.
    Every per-step view is cut once before the loop (``unbind``), so a step is 8 tensor ops.
    """
    k, t_len, r, _ = x.shape
    h = h0.shape[-1]
    b_gi = torch.cat([b_ih[..., : 2 * h] + b_hh[..., : 2 * h], b_ih[..., 2 * h:]], dim=-1)  # [K, 1, 3H]
    b_gh = torch.cat([torch.zeros_like(b_hh[..., : 2 * h]), b_hh[..., 2 * h:]], dim=-1)
    gi = torch.baddbmm(b_gi, x.reshape(k, t_len * r, -1), w_ih).view(k, t_len, r, 3 * h)
    gi_rz, gi_n = gi[..., : 2 * h].unbind(1), gi[..., 2 * h:].unbind(1)
    hs = x.new_empty(k, t_len + 1, r, h)
    hs[:, 0] = h0
    # per step: the recurrent products (time-major, so each step's batched product writes one contiguous
    # block), the r and z gates, n, and h - n; kept for every step with ``save``, else one step's, reused
    slots = t_len if save else 1
    gh_all, rz_all = x.new_empty(slots, k, r, 3 * h), x.new_empty(k, slots, r, 2 * h)
    n_all, d_all = x.new_empty(k, slots, r, h), x.new_empty(k, slots, r, h)
    h_in = x.new_empty(k, slots, r, h) if keep is not None else None
    gh_s, gh_rz, gh_n = gh_all.unbind(0), gh_all[..., : 2 * h].unbind(0), gh_all[..., 2 * h:].unbind(0)
    rz_s, r_s, z_s = rz_all.unbind(1), rz_all[..., :h].unbind(1), rz_all[..., h:].unbind(1)
    n_s, d_s, hs_s = n_all.unbind(1), d_all.unbind(1), hs.unbind(1)
    h_in_s, keep_s = (h_in.unbind(1), keep.unbind(1)) if keep is not None else (None, None)
    for t in range(t_len):
        i, h_t = (t if save else 0), hs_s[t]
        if keep is not None:
            h_t = torch.mul(h_t, keep_s[t], out=h_in_s[i])
        torch.baddbmm(b_gh, h_t, w_hh, out=gh_s[i])
        torch.add(gi_rz[t], gh_rz[i], out=rz_s[i]).sigmoid_()
        n = torch.addcmul(gi_n[t], r_s[i], gh_n[i], out=n_s[i]).tanh_()
        torch.addcmul(n, z_s[i], torch.sub(h_t, n, out=d_s[i]), out=hs_s[t + 1])
    return hs, ((gh_all, rz_all, n_all, d_all, h_in) if save else None)


class _StackedGRU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, h0, w_ih, b_ih, w_hh, b_hh, keep):
        hs, (gh, rz, n, d, h_in) = _forward(x, h0, w_ih, b_ih, w_hh, b_hh, keep, save=True)
        ctx.save_for_backward(x, hs[:, :-1] if h_in is None else h_in, gh, rz, n, d, w_ih, w_hh, keep)
        return hs[:, 1:]

    @staticmethod
    def backward(ctx, d_out):
        x, h_in, gh, rz, n, d, w_ih, w_hh, keep = ctx.saved_tensors
        k, t_len, r, h = n.shape
        d_gh = d_out.new_empty(k, t_len, r, 3 * h)  # d(pre-activation) of the recurrent products: r, z, n
        d_n = d_out.new_empty(k, t_len, r, h)  # d(pre-activation) of n, the input projection's n part
        w_hh_t = w_hh.transpose(1, 2)
        dh = torch.zeros_like(h_in[:, 0])
        # every per-step view cut once: saved gates and states, and the slots the loop writes
        d_out_s, n_s, d_s, gh_n = d_out.unbind(1), n.unbind(1), d.unbind(1), gh[..., 2 * h:].unbind(0)
        rz_s, r_s, z_s = rz.unbind(1), rz[..., :h].unbind(1), rz[..., h:].unbind(1)
        d_gh_s, d_rz, d_ghn = d_gh.unbind(1), d_gh[..., : 2 * h].unbind(1), d_gh[..., 2 * h:].unbind(1)
        d_r, d_z, d_n_s = d_gh[..., :h].unbind(1), d_gh[..., h: 2 * h].unbind(1), d_n.unbind(1)
        keep_s = keep.unbind(1) if keep is not None else None
        for t in range(t_len - 1, -1, -1):
            dh = dh + d_out_s[t]
            through_z = dh * z_s[t]  # the part of dh that skips the cell
            _tanh_backward(dh - through_z, n_s[t], grad_input=d_n_s[t])
            torch.mul(d_n_s[t], r_s[t], out=d_ghn[t])
            torch.mul(d_n_s[t], gh_n[t], out=d_r[t])
            torch.mul(dh, d_s[t], out=d_z[t])
            _sigmoid_backward(d_rz[t], rz_s[t], grad_input=d_rz[t])
            dh = torch.baddbmm(through_z, d_gh_s[t], w_hh_t)  # d(step t's input state)
            if keep is not None:
                dh.mul_(keep_s[t])
        need = ctx.needs_input_grad
        rows = t_len * r
        d_gi_rz, d_gi_n = d_gh[..., : 2 * h].reshape(k, rows, 2 * h), d_n.view(k, rows, h)
        x_rows = x.reshape(k, rows, -1)
        dx = dw_ih = db_ih = dw_hh = db_hh = None
        if need[0]:
            dx = torch.bmm(d_gi_n, w_ih[..., 2 * h:].transpose(1, 2))
            dx = dx.baddbmm_(d_gi_rz, w_ih[..., : 2 * h].transpose(1, 2)).view_as(x)
        if need[2]:
            xt = x_rows.transpose(1, 2)
            dw_ih = torch.cat([torch.bmm(xt, d_gi_rz), torch.bmm(xt, d_gi_n)], dim=-1)
        if need[3]:
            db_ih = torch.cat([d_gi_rz.sum(1), d_gi_n.sum(1)], dim=-1).unsqueeze(1)
        if need[4]:
            dw_hh = torch.bmm(h_in.reshape(k, rows, h).transpose(1, 2), d_gh.view(k, rows, 3 * h))
        if need[5]:
            db_hh = d_gh.view(k, rows, 3 * h).sum(1, keepdim=True)
        return dx, dh if need[1] else None, dw_ih, db_ih, dw_hh, db_hh, None


def stacked_gru(x: torch.Tensor, h0: torch.Tensor, w_ih: torch.Tensor, b_ih: torch.Tensor, w_hh: torch.Tensor,
                b_hh: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
    """States after every step ``[K, T, R, H]`` of K GRUs; see the module docstring for the layout.
    ``keep [K, T, R, 1]`` (no gradient) multiplies the state before each step: 0 resets it.

    Without gradient (target networks, ``torch.no_grad``) nothing is kept for a backward.
    """
    if keep is not None:
        keep = keep.detach().to(x.dtype)
    if torch.is_grad_enabled() and any(a.requires_grad for a in (x, h0, w_ih, b_ih, w_hh, b_hh)):
        return _StackedGRU.apply(x, h0, w_ih, b_ih, w_hh, b_hh, keep)
    return _forward(x, h0, w_ih, b_ih, w_hh, b_hh, keep, save=False)[0][:, 1:]
