"""A GRU over K stacked parameter sets (seeds) at once, with a hand-written backward.

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

>>> import torch
>>> gru = torch.nn.GRU(3, 4)
>>> x = torch.randn(6, 5, 3)                                   # [T, R, I]
>>> w = lambda p: p.detach().t().unsqueeze(0)                  # [1, in, 3H]
>>> b = lambda p: p.detach().view(1, 1, -1)
>>> hs = stacked_gru(x.unsqueeze(0), torch.zeros(1, 5, 4), w(gru.weight_ih_l0), b(gru.bias_ih_l0),
...                  w(gru.weight_hh_l0), b(gru.bias_hh_l0))
>>> torch.allclose(hs[0], gru(x)[0], atol=1e-6)
True
"""
from __future__ import annotations

import torch

__all__ = ["stacked_gru"]

_sigmoid_backward = torch.ops.aten.sigmoid_backward.grad_input
_tanh_backward = torch.ops.aten.tanh_backward.grad_input


def _forward(x, h0, w_ih, b_ih, w_hh, b_hh, save: bool):
    """The unroll; with ``save`` also what the backward reads (gates, ``h - n``, the recurrent products).

    The input projection of all steps is one product without bias: the biases join the per-step ops
    (r, z: ``b_i + b_h`` with the recurrent product; n: ``b_in`` added before the tanh), which saves a
    pass over the whole ``[K, T, R, 3H]`` projection.
    """
    k, t_len, r, _ = x.shape
    h = h0.shape[-1]
    gi = torch.bmm(x.reshape(k, t_len * r, -1), w_ih).view(k, t_len, r, 3 * h)
    b_step = torch.cat([b_ih[..., : 2 * h] + b_hh[..., : 2 * h], b_hh[..., 2 * h:]], dim=-1)  # [K, 1, 3H]
    b_in = b_ih[..., 2 * h:]
    hs = x.new_empty(k, t_len + 1, r, h)
    hs[:, 0] = h0
    # per step: the recurrent products (time-major, so each step's batched product writes one contiguous
    # block), the r and z gates, n, and h - n; kept for every step with ``save``, else one step's, reused
    slots = t_len if save else 1
    gh_all, rz_all = x.new_empty(slots, k, r, 3 * h), x.new_empty(k, slots, r, 2 * h)
    n_all, d_all = x.new_empty(k, slots, r, h), x.new_empty(k, slots, r, h)
    for t in range(t_len):
        i, h_t = (t if save else 0), hs[:, t]
        gh = torch.baddbmm(b_step, h_t, w_hh, out=gh_all[i])
        rz = torch.add(gi[:, t, :, : 2 * h], gh[..., : 2 * h], out=rz_all[:, i]).sigmoid_()
        n = torch.addcmul(gi[:, t, :, 2 * h:], rz[..., :h], gh[..., 2 * h:], out=n_all[:, i]).add_(b_in).tanh_()
        torch.addcmul(n, rz[..., h:], torch.sub(h_t, n, out=d_all[:, i]), out=hs[:, t + 1])
    return hs, ((gh_all, rz_all, n_all, d_all) if save else None)


class _StackedGRU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, h0, w_ih, b_ih, w_hh, b_hh):
        hs, (gh, rz, n, d) = _forward(x, h0, w_ih, b_ih, w_hh, b_hh, save=True)
        ctx.save_for_backward(x, hs, gh, rz, n, d, w_ih, w_hh)
        return hs[:, 1:]

    @staticmethod
    def backward(ctx, d_out):
        x, hs, gh, rz, n, d, w_ih, w_hh = ctx.saved_tensors
        k, t_len, r, h = n.shape
        d_gh = d_out.new_empty(k, t_len, r, 3 * h)  # d(pre-activation) of the recurrent products: r, z, n
        d_n = d_out.new_empty(k, t_len, r, h)  # d(pre-activation) of n, the input projection's n part
        w_hh_t = w_hh.transpose(1, 2)
        dh = torch.zeros_like(hs[:, 0])
        for t in range(t_len - 1, -1, -1):
            dh = dh + d_out[:, t]
            z, r_gate = rz[:, t, :, h:], rz[:, t, :, :h]
            through_z = dh * z  # the part of dh that skips the cell
            _tanh_backward(dh - through_z, n[:, t], grad_input=d_n[:, t])
            torch.mul(d_n[:, t], r_gate, out=d_gh[:, t, :, 2 * h:])
            g_rz = d_gh[:, t, :, : 2 * h]
            torch.mul(d_n[:, t], gh[t, ..., 2 * h:], out=g_rz[..., :h])
            torch.mul(dh, d[:, t], out=g_rz[..., h:])
            _sigmoid_backward(g_rz, rz[:, t], grad_input=g_rz)
            dh = torch.baddbmm(through_z, d_gh[:, t], w_hh_t)
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
            dw_hh = torch.bmm(hs[:, :t_len].reshape(k, rows, h).transpose(1, 2), d_gh.view(k, rows, 3 * h))
        if need[5]:
            db_hh = d_gh.view(k, rows, 3 * h).sum(1, keepdim=True)
        return dx, dh if need[1] else None, dw_ih, db_ih, dw_hh, db_hh


def stacked_gru(x: torch.Tensor, h0: torch.Tensor, w_ih: torch.Tensor, b_ih: torch.Tensor, w_hh: torch.Tensor,
                b_hh: torch.Tensor) -> torch.Tensor:
    """States after every step ``[K, T, R, H]`` of K GRUs; see the module docstring for the layout.

    Without gradient (target networks, ``torch.no_grad``) nothing is kept for a backward.
    """
    if torch.is_grad_enabled() and any(a.requires_grad for a in (x, h0, w_ih, b_ih, w_hh, b_hh)):
        return _StackedGRU.apply(x, h0, w_ih, b_ih, w_hh, b_hh)
    return _forward(x, h0, w_ih, b_ih, w_hh, b_hh, save=False)[0][:, 1:]
