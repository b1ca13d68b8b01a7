#!/usr/bin/env bash
# Install marl-torchrl on a fresh machine, with the right torch build first.
#
#   bash scripts/install.sh            # the package and its runtime dependencies
#   bash scripts/install.sh dev        # + test tools (pytest, pytest-xdist); any extras: dev,pettingzoo,lbf,smax,sweep,ray,all
#                                      # (all = every extra but ray: Ray is a large install)
#
# torch (skipped when a torch is already importable):
#   - `nvidia-smi -L` sees a GPU       -> pip install torch===$TORCH_VERSION  (PyPI's Linux build: CUDA)
#   - a local CPU wheel satisfies it   -> pip install torch==$TORCH_VERSION   (pip's find-links, no download)
#   - otherwise (CPU-only machine)     -> pip install torch==$TORCH_VERSION --index-url <PyTorch CPU index>
# so a CPU-only machine never downloads the CUDA packages a bare `torch` requirement would pull.
#
# Environment: TORCH_VERSION (default 2.13.0; an explicit value different from the installed torch
# reinstalls it), PYTHON (default python3), TORCH_CPU_INDEX (default the PyTorch CPU wheel index).
# Idempotent: when the package is already installed editable from this checkout with every
# requirement satisfied, nothing is installed (about a second).
set -euo pipefail

EXTRAS="${1:-}"
PYTHON="${PYTHON:-python3}"
DEFAULT_TORCH_VERSION="2.13.0"
TORCH_VERSION_SET="${TORCH_VERSION+x}"
TORCH_VERSION="${TORCH_VERSION:-$DEFAULT_TORCH_VERSION}"
TORCH_CPU_INDEX="${TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}"
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PIP=("$PYTHON" -m pip)

say() { echo "[install] $*"; }

if [[ -n "$EXTRAS" && ! "$EXTRAS" =~ ^[A-Za-z0-9_,-]+$ ]]; then
    echo "error: extras must be a comma-separated list of names (e.g. dev or dev,pettingzoo), got '$EXTRAS'" >&2
    exit 2
fi

# ---------------------------------------------------------------- torch
installed_torch="$(cd / && "$PYTHON" -c 'import importlib.metadata as m, importlib.util as u; print(m.version("torch") if u.find_spec("torch") else "")' 2>/dev/null || true)"

if [[ -n "$installed_torch" && ( -z "$TORCH_VERSION_SET" || "${installed_torch%%+*}" == "${TORCH_VERSION%%+*}" ) ]]; then
    say "torch $installed_torch already installed: keeping it"
else
    if [[ -n "$installed_torch" ]]; then
        say "torch $installed_torch installed but TORCH_VERSION=$TORCH_VERSION asked for: replacing it"
    fi
    if nvidia-smi -L >/dev/null 2>&1; then
        # `===` (exact version string) so that a local `+cpu` wheel in pip's find-links, which
        # `==` would also match and prefer, cannot stand in for the registry's CUDA build.
        say "GPU found (nvidia-smi): installing torch==$TORCH_VERSION from the default index (CUDA build)"
        "${PIP[@]}" install "torch===$TORCH_VERSION"
        if ! "$PYTHON" -c "import sys, torch; sys.exit(torch.version.cuda is None)"; then
            say "warning: the torch installed has no CUDA support; see https://pytorch.org/get-started/locally/" \
                "for the CUDA build matching your driver"
        fi
    else
        tmp="$(mktemp -d)"
        trap 'rm -rf "$tmp"' EXIT
        if "${PIP[@]}" download --quiet --no-deps --no-index "torch==$TORCH_VERSION" -d "$tmp" >/dev/null 2>&1; then
            say "no GPU; a local wheel satisfies torch==$TORCH_VERSION: installing it"
            "${PIP[@]}" install "torch==$TORCH_VERSION"
        else
            say "no GPU: installing the CPU build of torch==$TORCH_VERSION from $TORCH_CPU_INDEX"
            "${PIP[@]}" install "torch==$TORCH_VERSION" --index-url "$TORCH_CPU_INDEX"
        fi
        rm -rf "$tmp"
        trap - EXIT
    fi
fi

# ---------------------------------------------------------------- the package
# Fast path: already installed editable from this checkout, same scripts, every requirement of
# pyproject.toml (with the asked-for extras) satisfied -> nothing to do.
# (Run from / so that a marl_torchrl.egg-info left in the checkout does not shadow the installed metadata.)
if (cd / && "$PYTHON" - "$REPO_ROOT" "$EXTRAS") <<'EOF' 2>/dev/null; then
import importlib.metadata as md, json, re, sys
from pathlib import Path
import tomllib
from packaging.requirements import Requirement

root, extras = Path(sys.argv[1]), [e for e in sys.argv[2].split(",") if e]
project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
dist = md.distribution(project["name"])
url = json.loads(dist.read_text("direct_url.json") or "{}")
assert url.get("dir_info", {}).get("editable") and url["url"] == root.as_uri()
assert dist.version == project["version"]
scripts = {ep.name: ep.value for ep in dist.entry_points if ep.group == "console_scripts"}
assert scripts == project.get("scripts", {})
norm = lambda n: re.sub(r"[-_.]+", "-", n).lower()
todo, seen, reqs = list(extras), set(), list(project.get("dependencies", []))
while todo:
    extra = todo.pop()
    if extra in seen:
        continue
    seen.add(extra)
    for spec in project.get("optional-dependencies", {})[extra]:  # KeyError: unknown extra -> reinstall
        r = Requirement(spec)
        if norm(r.name) == norm(project["name"]):
            todo += list(r.extras)
        else:
            reqs.append(spec)
for spec in reqs:
    r = Requirement(spec)
    if r.marker is not None and not r.marker.evaluate():
        continue
    assert r.specifier.contains(md.version(r.name), prereleases=True), spec
EOF
    say "marl-torchrl${EXTRAS:+[$EXTRAS]} already installed from $REPO_ROOT: nothing to do"
else
    say "installing marl-torchrl${EXTRAS:+[$EXTRAS]} (editable) from $REPO_ROOT"
    (cd "$REPO_ROOT" && "${PIP[@]}" install -e ".${EXTRAS:+[$EXTRAS]}")
fi
say "done"
