"""A GRU over K stacked parameter sets (seeds) at once, with a hand-written backward and optional resets.

:func:`stacked_gru` runs ``K`` independent GRUs, seed ``k`` with its own weights on its own inputs, as one
computation: every time step is two batched matrix products (``torch.baddbmm`` over the seed dimension,
the recurrent product's ``r, z`` and ``n`` parts) and a handful of elementwise ops on ``[K, R, H]``
tensors. The numbers are ``nn.GRU``'s (gate order ``r, z, n``; ``n = tanh(W_in x + b_in + r * (W_hn h +
b_hn))``; ``h' = (1 - z) * n + z * h``) up to float rounding.

Why a hand-written backward: the same loop written with torch ops and left to autograd slices the whole
``[K, T, R, 3H]`` input projection at every step, and the backward of each slice writes a full-size zero
tensor (quadratic in ``T``: 16x slower than ``nn.GRU`` at balance's sizes, measured); ``torch.func.vmap``
of ``nn.GRU`` works only under ``grad`` and is no faster than K separate GRUs. The backward below is 9
ops per step.

Why chunks of steps: at these sizes every op is large enough that its per-call cost hardly counts, but
whole-sequence buffers of K seeds (the input projection and the gate gradients, ``[K, T, R, 3H]``: 80 MB
at K = 8 on balance) leave the cache, and ops over them run at half the speed of ops over cache-resident
tensors (measured on one CPU thread: 0.85 against 1.9 G elements/s for an add). So the input projection,
and in the backward the gate gradients with the weight, bias and input gradients they feed, are done
``chunk`` steps at a time into small buffers that stay in the cache (by default about 2 MB a chunk on a
CPU, and all steps in one chunk on an accelerator, which pays per kernel launch instead); the
recurrent product is split into its ``r, z`` part, added straight onto the input projection, and its
``n`` part, the only one the backward reads.

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
#: Elements of the per-chunk gate buffers (``chunk * K * R * 4H``) that the default chunk aims at on a CPU.
CHUNK_ELEMENTS = 1 << 19


def _chunks(x: torch.Tensor, t_len: int, k: int, r: int, h: int, chunk: int | None) -> list[tuple[int, int]]:
    """``[(t0, t1), ...]``: the time axis cut into runs of ``chunk`` steps. Default: by ``CHUNK_ELEMENTS`` on a
    CPU (its cache); elsewhere one chunk (an accelerator pays per kernel launch, not for big buffers)."""
    step = chunk or (max(1, CHUNK_ELEMENTS // (k * r * 4 * h)) if x.device.type == "cpu" else t_len)
    return [(t0, min(t_len, t0 + step)) for t0 in range(0, t_len, step)]


def _forward(x, h0, w_ih, b_ih, w_hh, b_hh, keep, save: bool, chunk: int | None):
    """The unroll; with ``save`` also what the backward reads (the ``r, z`` gates, ``n``, ``h - n``, the
    recurrent product's ``n`` part, and with ``keep`` each step's input state, the reset one).

    The input projection of a chunk is one product that also adds the biases outside the reset gate
    (``b_i + b_h`` of r and z, ``b_in``); each step adds its ``r, z`` recurrent product onto it and
    computes the ``n`` part with ``b_hn``. Per-step views are cut once before the loop (``unbind``).
    """
    k, t_len, r, n_in = x.shape
    h = h0.shape[-1]
    b_gi = torch.cat([b_ih[..., : 2 * h] + b_hh[..., : 2 * h], b_ih[..., 2 * h:]], dim=-1)  # [K, 1, 3H]
    w_rz, w_n, b_n = w_hh[..., : 2 * h], w_hh[..., 2 * h:], b_hh[..., 2 * h:]
    hs = x.new_empty(k, t_len + 1, r, h)
    hs[:, 0] = h0
    slots = t_len if save else 1  # kept for every step with ``save``, else one step's, reused
    rz_all, ghn_all = x.new_empty(slots, k, r, 2 * h), x.new_empty(slots, k, r, h)  # time-major: contiguous
    n_all, d_all = x.new_empty(slots, k, r, h), x.new_empty(slots, k, r, h)        # per-step product outputs
    h_in = x.new_empty(k, slots, r, h) if keep is not None else None
    rz_s, r_s, z_s = rz_all.unbind(0), rz_all[..., :h].unbind(0), rz_all[..., h:].unbind(0)
    ghn_s, n_s, d_s, hs_s = ghn_all.unbind(0), n_all.unbind(0), d_all.unbind(0), hs.unbind(1)
    h_in_s, keep_s = (h_in.unbind(1), keep.unbind(1)) if keep is not None else (None, None)
    for t0, t1 in _chunks(x, t_len, k, r, h, chunk):
        x_c = x[:, t0:t1].reshape(k, -1, n_in)  # r, z and n apart: each step reads one contiguous block a seed
        gi_rz = torch.baddbmm(b_gi[..., : 2 * h], x_c, w_ih[..., : 2 * h]).view(k, t1 - t0, r, 2 * h).unbind(1)
        gi_n = torch.baddbmm(b_gi[..., 2 * h:], x_c, w_ih[..., 2 * h:]).view(k, t1 - t0, r, h).unbind(1)
        for j, t in enumerate(range(t0, t1)):
            i, h_t = (t if save else 0), hs_s[t]
            if keep is not None:
                h_t = torch.mul(h_t, keep_s[t], out=h_in_s[i])
            torch.baddbmm(gi_rz[j], h_t, w_rz, out=rz_s[i]).sigmoid_()
            torch.baddbmm(b_n, h_t, w_n, out=ghn_s[i])
            n = torch.addcmul(gi_n[j], r_s[i], ghn_s[i], out=n_s[i]).tanh_()
            torch.addcmul(n, z_s[i], torch.sub(h_t, n, out=d_s[i]), out=hs_s[t + 1])
    return hs, ((ghn_all, rz_all, n_all, d_all, h_in) if save else None)


class _StackedGRU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, h0, w_ih, b_ih, w_hh, b_hh, keep, chunk):
        hs, (ghn, rz, n, d, h_in) = _forward(x, h0, w_ih, b_ih, w_hh, b_hh, keep, True, chunk)
        ctx.save_for_backward(x, hs[:, :-1] if h_in is None else h_in, ghn, rz, n, d, w_ih, w_hh, keep)
        ctx.chunk = chunk
        return hs[:, 1:]

    @staticmethod
    def backward(ctx, d_out):
        x, h_in, ghn, rz, n, d, w_ih, w_hh, keep = ctx.saved_tensors
        t_len, k, r, h = n.shape
        n_in, need = x.shape[-1], ctx.needs_input_grad
        w_hh_t = w_hh.transpose(1, 2)
        w_irz_t, w_in_t = w_ih[..., : 2 * h].transpose(1, 2), w_ih[..., 2 * h:].transpose(1, 2)
        dx = torch.empty_like(x) if need[0] else None
        dw_irz, dw_in = x.new_zeros(k, n_in, 2 * h), x.new_zeros(k, n_in, h)
        dw_hh, db_gh, db_in = x.new_zeros(k, h, 3 * h), x.new_zeros(k, 3 * h), x.new_zeros(k, h)
        dh = torch.zeros_like(h_in[:, 0])
        d_out_s, n_s, d_s, ghn_s = d_out.unbind(1), n.unbind(0), d.unbind(0), ghn.unbind(0)
        rz_s, r_s, z_s = rz.unbind(0), rz[..., :h].unbind(0), rz[..., h:].unbind(0)
        keep_s = keep.unbind(1) if keep is not None else None
        for t0, t1 in reversed(_chunks(x, t_len, k, r, h, ctx.chunk)):
            m = t1 - t0
            # d(pre-activation) of the chunk's gates: r, z (input and recurrent alike) and the recurrent n
            # part in d_gh; the input projection's n part in d_n
            d_gh, d_n = x.new_empty(k, m, r, 3 * h), x.new_empty(k, m, r, h)
            d_gh_s, d_rz, d_n_s = d_gh.unbind(1), d_gh[..., : 2 * h].unbind(1), d_n.unbind(1)
            d_r, d_z, d_ghn = d_gh[..., :h].unbind(1), d_gh[..., h: 2 * h].unbind(1), d_gh[..., 2 * h:].unbind(1)
            for j in range(m - 1, -1, -1):
                t = t0 + j
                dh = dh + d_out_s[t]
                through_z = dh * z_s[t]  # the part of dh that skips the cell
                _tanh_backward(dh - through_z, n_s[t], grad_input=d_n_s[j])
                torch.mul(d_n_s[j], r_s[t], out=d_ghn[j])
                torch.mul(d_n_s[j], ghn_s[t], out=d_r[j])
                torch.mul(dh, d_s[t], out=d_z[j])
                _sigmoid_backward(d_rz[j], rz_s[t], grad_input=d_rz[j])
                dh = torch.baddbmm(through_z, d_gh_s[j], w_hh_t)  # d(step t's input state)
                if keep is not None:
                    dh.mul_(keep_s[t])
            # the chunk's share of the input, weight and bias gradients, while its buffers are in the cache
            d_gh_rows, d_n_rows = d_gh.view(k, m * r, 3 * h), d_n.view(k, m * r, h)
            d_rz_rows, x_rows = d_gh_rows[..., : 2 * h], x[:, t0:t1].reshape(k, m * r, n_in)
            if dx is not None:
                dx[:, t0:t1] = torch.bmm(d_n_rows, w_in_t).baddbmm_(d_rz_rows, w_irz_t).view(k, m, r, n_in)
            x_t = x_rows.transpose(1, 2)
            dw_irz.baddbmm_(x_t, d_rz_rows)
            dw_in.baddbmm_(x_t, d_n_rows)
            dw_hh.baddbmm_(h_in[:, t0:t1].reshape(k, m * r, h).transpose(1, 2), d_gh_rows)
            db_gh += d_gh_rows.sum(1)
            db_in += d_n_rows.sum(1)
        dw_ih = torch.cat([dw_irz, dw_in], dim=-1) if need[2] else None
        db_ih = torch.cat([db_gh[:, : 2 * h], db_in], dim=-1).unsqueeze(1) if need[3] else None
        return (dx, dh if need[1] else None, dw_ih, db_ih, dw_hh if need[4] else None,
                db_gh.unsqueeze(1) if need[5] else None, None, None)


def stacked_gru(x: torch.Tensor, h0: torch.Tensor, w_ih: torch.Tensor, b_ih: torch.Tensor, w_hh: torch.Tensor,
                b_hh: torch.Tensor, keep: torch.Tensor | None = None, *, chunk: int | None = None) -> torch.Tensor:
    """States after every step ``[K, T, R, H]`` of K GRUs; see the module docstring for the layout.
    ``keep [K, T, R, 1]`` (no gradient) multiplies the state before each step: 0 resets it. ``chunk``: steps
    per chunk of the input projection and of the backward's gradient products (default: by cache size on a
    CPU, all steps at once elsewhere).

    Without gradient (target networks, ``torch.no_grad``) nothing is kept for a backward.
    """
    if keep is not None:
        keep = keep.detach().to(x.dtype)
    if torch.is_grad_enabled() and any(a.requires_grad for a in (x, h0, w_ih, b_ih, w_hh, b_hh)):
        return _StackedGRU.apply(x, h0, w_ih, b_ih, w_hh, b_hh, keep, chunk)
    return _forward(x, h0, w_ih, b_ih, w_hh, b_hh, keep, False, chunk)[0][:, 1:]
