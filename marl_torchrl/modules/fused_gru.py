"""A GRU over a whole sequence with a hand-written backward: the CPU kernel for agent unrolls.

On CPU, ``nn.GRU`` runs each time step as about ten small ATen ops, and autograd records every one of
them, so training a GRU agent on short batches spends most of its time in per-op overhead, forward
and backward. :func:`gru_sequence` computes the same recurrence (PyTorch's gate order and formulas,
with the input projection done once for all steps) in six ops a step, and its backward in seven ops
a step: everything that does not depend on the incoming gradient (gate derivatives, weight and input
gradients) is done as whole-sequence tensor ops before or after the loop over time.

It reads the parameters of an ``nn.GRU(H_in, H, num_layers=1)``, so the two are interchangeable (same
state dict). Forward values equal ``nn.GRU``'s on CPU bit for bit (same op order); gradients agree to
float rounding, since autograd and the hand-written backward add the same terms in different orders.

>>> import torch
>>> gru = torch.nn.GRU(4, 8, batch_first=True)
>>> x, h0 = torch.randn(3, 5, 4), torch.randn(1, 3, 8)
>>> y, h = gru_sequence(x, h0[0], gru)
>>> bool(torch.equal(y, gru(x, h0)[0])), h.shape
(True, torch.Size([3, 8]))
"""
from __future__ import annotations

import torch
from torch import nn
from torch.autograd.function import once_differentiable


class _GRURecurrence(torch.autograd.Function):
    """The recurrent part: input gates ``gi [T, N, 3H]`` (``x W_ih^T + b_ih``) and ``h0 [N, H]`` ->
    every hidden state ``[T, N, H]``."""

    @staticmethod
    def forward(ctx, gi, h0, w_hh, b_hh):
        steps, n, h3 = gi.shape
        hd = h3 // 3
        out = gi.new_empty(steps, n, hd)
        gh_all = gi.new_empty(steps, n, h3)
        rz_all = gi.new_empty(steps, n, 2 * hd)
        n_all = gi.new_empty(steps, n, hd)
        w_t = w_hh.t()
        h = h0
        for t in range(steps):  # PyTorch's GRUCell, op for op (aten/src/ATen/native/RNN.cpp)
            gh = torch.addmm(b_hh, h, w_t, out=gh_all[t])
            # r and z one by one: vectorised sigmoid rounds by row width, so keep ATen's H-wide rows
            r = torch.add(gh[:, :hd], gi[t, :, :hd], out=rz_all[t, :, :hd]).sigmoid_()
            z = torch.add(gh[:, hd : 2 * hd], gi[t, :, hd : 2 * hd], out=rz_all[t, :, hd:]).sigmoid_()
            new = torch.mul(gh[:, 2 * hd :], r, out=n_all[t]).add_(gi[t, :, 2 * hd :]).tanh_()
            h = torch.sub(h, new, out=out[t]).mul_(z).add_(new)
        ctx.save_for_backward(h0, out, gh_all, rz_all, n_all, w_hh)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        h0, out, gh_all, rz_all, n_all, w_hh = ctx.saved_tensors
        steps, n, hd = out.shape
        r, z = rz_all[..., :hd], rz_all[..., hd:]
        h_prev = torch.cat([h0.unsqueeze(0), out[:-1]])
        # per step, dh -> d(pre-activations) is elementwise with factors known before the loop
        dn_factor = (1 - z) * (1 - n_all * n_all)  # dL/da_n = dh * dn_factor
        dz_factor = (h_prev - n_all) * z * (1 - z)  # dL/da_z = dh * dz_factor
        dr_factor = gh_all[..., 2 * hd :] * r * (1 - r)  # dL/da_r = dL/da_n * dr_factor
        dgh = torch.empty_like(gh_all)  # d(h W_hh^T + b_hh): [da_r, da_z, da_n * r]
        dan = torch.empty_like(out)  # da_n, the input gates' n part
        dh = torch.zeros_like(h0)
        for t in range(steps - 1, -1, -1):
            dh = dh + grad_out[t]
            da_n = torch.mul(dh, dn_factor[t], out=dan[t])
            torch.mul(da_n, dr_factor[t], out=dgh[t, :, :hd])
            torch.mul(dh, dz_factor[t], out=dgh[t, :, hd : 2 * hd])
            torch.mul(da_n, r[t], out=dgh[t, :, 2 * hd :])
            dh = torch.addmm(dh * z[t], dgh[t], w_hh)
        grad_gi = torch.cat([dgh[..., : 2 * hd], dan], dim=-1)
        flat = dgh.reshape(-1, 3 * hd)
        grad_w = flat.t() @ h_prev.reshape(-1, hd) if ctx.needs_input_grad[2] else None
        grad_b = flat.sum(0) if ctx.needs_input_grad[3] else None
        return grad_gi, dh, grad_w, grad_b


def gru_sequence(x: torch.Tensor, h0: torch.Tensor, gru: nn.GRU) -> tuple[torch.Tensor, torch.Tensor]:
    """Run ``gru``'s one layer over ``x [N, T, H_in]`` (batch first) from ``h0 [N, H]``.

    Returns ``(y [N, T, H], h_T [N, H])``, the values ``gru(x, h0[None])`` gives.
    """
    if gru.num_layers != 1 or gru.bidirectional or not gru.batch_first or not gru.bias:
        raise ValueError("gru_sequence runs a one-layer, unidirectional, batch-first nn.GRU with biases")
    gi = nn.functional.linear(x.transpose(0, 1), gru.weight_ih_l0, gru.bias_ih_l0)  # [T, N, 3H], as ATen
    out = _GRURecurrence.apply(gi, h0, gru.weight_hh_l0, gru.bias_hh_l0)
    return out.transpose(0, 1), out[-1]
