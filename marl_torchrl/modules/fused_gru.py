"""A one-layer GRU over a whole sequence with a hand-written backward, for training unrolls on the CPU.

``nn.GRU`` on the CPU runs its recurrence in C++, but autograd records about a dozen ops per time step
and, going backward, computes the recurrent weight's gradient one step at a time (a thin ``[H, B] x
[B, 3H]`` product per step, then an add into the accumulated gradient). :func:`gru_sequence` computes
the same function (PyTorch's GRU equations, gates in ``r, z, n`` order) with 4 ops per step forward
(the recurrent product adds the input's gate terms itself) and 4 backward: everything in the backward
that does not depend on the incoming gradient (gate derivatives) is computed for all steps at once
before the loop, and every weight and bias gradient is formed once, after it, as one
``[3H, T*B] x [T*B, *]`` product. Values agree with ``nn.GRU`` to float rounding (tested: outputs, final
state, and gradients of the input, initial state, weights and biases). On one CPU thread it made the
QMIX update with whole 100-step episodes faster (figures in ``benchmarks/README.md``).

>>> gru = torch.nn.GRU(5, 8)
>>> x, h0 = torch.randn(7, 3, 5), torch.randn(3, 8)
>>> y, h = gru_sequence(x, h0, gru)
>>> y_ref, h_ref = gru(x, h0.unsqueeze(0))
>>> bool(torch.allclose(y, y_ref, atol=1e-6)), bool(torch.allclose(h, h_ref[0], atol=1e-6))
(True, True)
"""
from __future__ import annotations

import torch
from torch import nn


class _GRUSequence(torch.autograd.Function):
    """``(x [T, B, F], h0 [B, H], w_ih, w_hh, b_ih, b_hh) -> (y [T, B, H], h_T [B, H])``."""

    @staticmethod
    def forward(ctx, x, h0, w_ih, w_hh, b_ih, b_hh):
        steps, batch, _ = x.shape
        hd = h0.shape[-1]
        x2 = x.reshape(steps * batch, -1)
        # pre[t] starts as [gi_r + b_hr, gi_z + b_hz, b_hn]; the step's addmm adds h W_hh^T to it, so it
        # holds both gates' pre-activations and gh_n = W_hn h + b_hn; gi_n = W_in x + b_in is kept apart
        w_rz0 = torch.cat([w_ih[: 2 * hd], w_ih.new_zeros(hd, w_ih.shape[1])])
        bias = torch.cat([b_ih[: 2 * hd] + b_hh[: 2 * hd], b_hh[2 * hd:]])
        pre = torch.addmm(bias, x2, w_rz0.t()).view(steps, batch, 3 * hd)
        gi_n = torch.addmm(b_ih[2 * hd:], x2, w_ih[2 * hd:].t()).view(steps, batch, hd)
        hs = x.new_empty(steps + 1, batch, hd)  # hs[t] is the state before step t
        hs[0] = h0
        rz = x.new_empty(steps, batch, 2 * hd)  # reset and update gates
        n = x.new_empty(steps, batch, hd)  # candidate states
        w_hh_t = w_hh.t()
        # per-step views made once (indexing in the loop would cost more than the small ops themselves)
        loop = zip(hs.unbind(0), hs[1:].unbind(0), pre.unbind(0), pre[..., 2 * hd:].unbind(0), gi_n.unbind(0),
                   rz.unbind(0), rz[..., :hd].unbind(0), rz[..., hd:].unbind(0), n.unbind(0))
        for h, h_next, pre_t, gh_n, gi_n_t, rz_t, r, z, n_t in loop:
            torch.addmm(pre_t, h, w_hh_t, out=pre_t)
            torch.sigmoid(pre_t[:, : 2 * hd], out=rz_t)
            torch.tanh(torch.addcmul(gi_n_t, r, gh_n), out=n_t)
            torch.lerp(n_t, h, z, out=h_next)  # (1 - z) * n + z * h
        ctx.save_for_backward(x, w_ih, w_hh, hs, pre[..., 2 * hd:], rz, n)
        return hs[1:].clone(), hs[steps].clone()

    @staticmethod
    def backward(ctx, d_y, d_h_last):
        x, w_ih, w_hh, hs, gh_n, rz, n = ctx.saved_tensors
        steps, batch, hd = n.shape
        r, z = rz[..., :hd], rz[..., hd:]
        # what does not depend on the incoming gradient dh, for all steps at once: the gradients of
        # [r-pre, z-pre, gh_n] are dh * k (h' = (1 - z) n + z h, n = tanh(gi_n + r gh_n))
        d_n_pre = torch.ops.aten.tanh_backward(1 - z, n)  # d tanh-input / dh
        k = x.new_empty(steps, batch, 3, hd)
        torch.ops.aten.sigmoid_backward.grad_input(d_n_pre * gh_n, r, grad_input=k[:, :, 0])
        torch.ops.aten.sigmoid_backward.grad_input(hs[:-1] - n, z, grad_input=k[:, :, 1])
        torch.mul(d_n_pre, r, out=k[:, :, 2])
        d_gh = x.new_empty(steps, batch, 3 * hd)  # gradients of the recurrent pre-activations
        dh_all = x.new_empty(steps, batch, hd)  # gradient reaching each step's output state
        dh = d_h_last if d_h_last is not None else x.new_zeros(batch, hd)
        d_ys = d_y.unbind(0) if d_y is not None else [None] * steps
        loop = zip(d_ys, dh_all.unbind(0), dh_all.unsqueeze(2).unbind(0), k.unbind(0), z.unbind(0),
                   d_gh.unbind(0), d_gh.view(steps, batch, 3, hd).unbind(0))
        for d_y_t, dh_t, dh_t3, k_t, z_t, d_gh_t, d_gh_t3 in reversed(list(loop)):
            if d_y_t is not None:
                torch.add(dh, d_y_t, out=dh_t)
            else:
                dh_t.copy_(dh)
            torch.mul(dh_t3, k_t, out=d_gh_t3)
            dh = torch.addmm(dh_t * z_t, d_gh_t, w_hh)
        rows = steps * batch
        d_rz = d_gh.view(rows, 3 * hd)[:, : 2 * hd]  # r and z pre-activations take x's and h's parts alike
        d_gin = (dh_all * d_n_pre).view(rows, hd)
        x2 = x.reshape(rows, -1)
        d_x = None
        if ctx.needs_input_grad[0]:
            d_x = torch.addmm(d_rz @ w_ih[: 2 * hd], d_gin, w_ih[2 * hd:]).view_as(x)
        d_w_ih = torch.cat([d_rz.t() @ x2, d_gin.t() @ x2])
        d_w_hh = d_gh.view(rows, 3 * hd).t() @ hs[:-1].reshape(rows, hd)
        d_b_hh = d_gh.view(rows, 3 * hd).sum(0)
        return d_x, dh, d_w_ih, d_w_hh, torch.cat([d_b_hh[: 2 * hd], d_gin.sum(0)]), d_b_hh


def gru_sequence(x: torch.Tensor, h0: torch.Tensor, gru: nn.GRU) -> tuple[torch.Tensor, torch.Tensor]:
    """Run ``gru`` (one layer, time-major) over ``x [T, B, F]`` from ``h0 [B, H]``: ``(y [T, B, H], h_T [B, H])``.

    The same values as ``gru(x, h0[None])`` (with ``h_T`` unbatched); the backward is the hand-written one
    of the module docstring. Needs a one-layer, unidirectional GRU with biases.
    """
    if gru.num_layers != 1 or gru.bidirectional or not gru.bias or gru.batch_first:
        raise ValueError("gru_sequence needs a one-layer, unidirectional, time-major nn.GRU with biases")
    return _GRUSequence.apply(x.contiguous(), h0.contiguous(), gru.weight_ih_l0, gru.weight_hh_l0, gru.bias_ih_l0,
                              gru.bias_hh_l0)
