"""Render an episode of a VMAS env to frames, and save frames as a GIF (or MP4 with an ffmpeg backend).

VMAS draws with pyglet/OpenGL. With no display it renders off-screen through EGL, which needs the
OpenGL/EGL system libraries (Debian/Ubuntu: ``apt-get install -y libegl1 libegl-mesa0 libgl1-mesa-dri
libglu1-mesa``; Mesa's software EGL device works without a GPU). Where EGL finds no device, VMAS falls
back on a window and needs a display: run under ``xvfb-run -a`` (``apt-get install -y xvfb``).
Only VMAS envs render; other families raise :class:`RenderError`.

>>> import numpy as np, os, tempfile
>>> frames = [np.zeros((8, 8, 3), dtype=np.uint8), np.full((8, 8, 3), 255, dtype=np.uint8)]
>>> path = os.path.join(tempfile.mkdtemp(), "clip.gif")
>>> save_video(frames, path) == path and os.path.getsize(path) > 0
True
"""
from __future__ import annotations

import importlib.util
import os
from typing import Callable, Optional

import numpy as np
import torch
from tensordict import TensorDictBase
from torchrl.envs import EnvBase
from torchrl.envs.utils import step_mdp

from marl_torchrl import keys

_HOW_TO_RENDER = (
    "VMAS rendering needs OpenGL: install EGL for off-screen rendering "
    "(apt-get install -y libegl1 libegl-mesa0 libgl1-mesa-dri libglu1-mesa) "
    "or run under a virtual display (apt-get install -y xvfb; xvfb-run -a python ...)"
)


class RenderError(RuntimeError):
    """An env that cannot render here, or a video format with no writer; the message says what to do.

    >>> isinstance(RenderError("no display"), RuntimeError)
    True
    """


def _vmas_of(env: EnvBase):
    base = getattr(env, "base_env", env)
    raw = getattr(base, "_env", None)
    if raw is None or type(raw).__module__.split(".")[0] != "vmas":
        raise RenderError(f"{type(base).__name__} cannot render: only VMAS envs render (family 'vmas')")
    return raw


def render_frame(env: EnvBase, env_index: int = 0) -> np.ndarray:
    """One RGB frame ``[H, W, 3]`` uint8 of sub-env ``env_index`` of a VMAS env.

    >>> from marl_torchrl.envs import make_env
    >>> render_frame(make_env({"family": "matrix", "task": "two_step"}))
    Traceback (most recent call last):
    ...
    marl_torchrl.envs.render.RenderError: TwoStepGame cannot render: only VMAS envs render (family 'vmas')
    """
    raw = _vmas_of(env)
    try:
        frame = raw.render(mode="rgb_array", env_index=env_index)
    except ImportError as err:
        raise RenderError(f"{_HOW_TO_RENDER} ({type(err).__name__}: {err})") from err
    except Exception as err:  # pyglet raises its own types (e.g. NoSuchDisplayException)
        if "pyglet" in type(err).__module__ or "display" in str(err).lower():
            raise RenderError(f"{_HOW_TO_RENDER} ({type(err).__name__}: {err})") from err
        raise
    return np.ascontiguousarray(frame, dtype=np.uint8)


def render_frames(
    env: EnvBase,
    policy: Optional[Callable[[TensorDictBase], TensorDictBase]] = None,
    max_steps: int = 100,
) -> list[np.ndarray]:
    """Reset ``env``, act with ``policy`` (random actions when None) and return the frames of sub-env 0.

    Stops after ``max_steps`` steps or when sub-env 0 is done; the list holds the first frame and one
    per step. Run the policy in the exploration mode you want to see (e.g. ``set_exploration_type``).

    >>> from marl_torchrl.envs import make_env
    >>> env = make_env({"family": "vmas", "task": "balance", "max_steps": 3}, num_envs=1, seed=0)
    >>> frames = render_frames(env, max_steps=5)
    >>> len(frames), frames[0].shape, frames[0].dtype
    (4, (700, 700, 3), dtype('uint8'))
    """
    _vmas_of(env)
    frames = []
    with torch.no_grad():
        td = env.reset()
        frames.append(render_frame(env))
        for _ in range(max_steps):
            td = policy(td) if policy is not None else env.rand_action(td)
            td = env.step(td)
            frames.append(render_frame(env))
            if td.get(("next", keys.DONE)).reshape(-1)[0]:
                break
            td = step_mdp(td)
    return frames


def save_video(frames: list[np.ndarray], path: str, fps: int = 20) -> str:
    """Write ``frames`` (``[H, W, 3]`` uint8) to ``path``: ``.gif`` always, ``.mp4`` with an ffmpeg backend.

    >>> save_video([], "x.gif")
    Traceback (most recent call last):
    ...
    marl_torchrl.envs.render.RenderError: no frames to save
    """
    import imageio.v2 as imageio

    if not frames:
        raise RenderError("no frames to save")
    ext = os.path.splitext(path)[1].lower()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if ext == ".gif":
        imageio.mimsave(path, [np.asarray(f, dtype=np.uint8) for f in frames], duration=1000.0 / fps, loop=0)
    elif ext == ".mp4":
        if importlib.util.find_spec("imageio_ffmpeg") is None:
            raise RenderError("saving .mp4 needs an ffmpeg backend: pip install imageio-ffmpeg (or save as .gif)")
        imageio.mimsave(path, [np.asarray(f, dtype=np.uint8) for f in frames], fps=fps)
    else:
        raise RenderError(f"unsupported video format {ext!r}: use .gif (or .mp4 with imageio-ffmpeg)")
    return path
