"""The wandb logger backend; falls back to offline logging, with one warning line, when the server
cannot be reached (a run never hangs on a missing network).

>>> server_unreachable("http://127.0.0.1:1", timeout=1.0) is not None  # nothing listens on port 1
True
"""
from __future__ import annotations

import os
import secrets
import socket
import sys
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlsplit
from urllib.request import getproxies, proxy_bypass

__all__ = ["WandbLogger", "server_unreachable"]


def server_unreachable(url: str, timeout: float = 3.0) -> str | None:
    """Why a TCP connection to ``url``'s host (or its proxy) fails within ``timeout`` s; None if it works."""
    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
    proxy = getproxies().get(parts.scheme)
    if proxy and not proxy_bypass(host):
        proxy_parts = urlsplit(proxy)
        host, port = proxy_parts.hostname or "", proxy_parts.port or (443 if proxy_parts.scheme == "https" else 80)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as err:
        return f"{host}:{port}: {err.strerror or err}"
    return None


class WandbLogger:
    """A wandb run in ``run_dir`` (``mode="offline"`` needs no network; sync later with ``wandb sync``).

    The run id is kept in ``<run_dir>/wandb/run_id``: a resumed run continues the same wandb run.
    ``mode="online"`` first probes the server (``WANDB_BASE_URL``) with a short TCP connect; if it is
    unreachable, or ``wandb.init`` fails within ``init_timeout`` s, the run logs offline and says so
    in one ``warning:`` line on stderr.

    >>> WandbLogger.__name__  # a real run is exercised in tests/test_logging.py
    'WandbLogger'
    """

    def __init__(self, run_dir: str | Path, *, config: Mapping | None = None, wandb_mode: str = "offline",
                 project: str = "marl-torchrl", run_name: str | None = None, init_timeout: float = 30.0,
                 **_: Any):
        os.environ.setdefault("WANDB_SILENT", "true")
        import wandb

        self.path = Path(run_dir) / "wandb"
        self.path.mkdir(parents=True, exist_ok=True)
        id_file = self.path / "run_id"
        run_id = id_file.read_text().strip() if id_file.exists() else ""
        if not run_id:
            run_id = secrets.token_hex(6)  # wandb ids: lowercase letters and digits
            id_file.write_text(run_id + "\n")
        kwargs = dict(project=project, dir=str(run_dir), config=dict(config or {}), name=run_name,
                      id=run_id, resume="allow", settings=wandb.Settings(init_timeout=init_timeout))
        reason = None
        if wandb_mode == "online":
            reason = server_unreachable(os.environ.get("WANDB_BASE_URL") or "https://api.wandb.ai")
            if reason is None:
                try:
                    self.run = wandb.init(mode="online", **kwargs)
                    return
                except Exception as err:  # noqa: BLE001 - any failure to start online means offline
                    reason = " ".join(f"{type(err).__name__}: {err}".split())
            wandb_mode = "offline"
        self.run = wandb.init(mode=wandb_mode, **kwargs)
        if reason is not None:
            where = Path(self.run.dir).parent
            print(f"warning: wandb cannot reach its server ({reason}); logging offline to {where}; "
                  f"sync later with: wandb sync {where}", file=sys.stderr, flush=True)

    def log(self, metrics: Mapping[str, int | float], step: int) -> None:
        self.run.log(dict(metrics), step=step)

    def close(self) -> None:
        if self.run is not None:
            self.run.finish()
            self.run = None
