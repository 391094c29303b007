"""Training checkpoints that a kill can never corrupt, and the RNG states that make resume exact.

    checkpoints/step-00000400/state.pt    model, optimizer, scheduler, scaler, RNG, data position
    checkpoints/step-00000400/done.json   step and sha256 of state.pt, written before the rename

A checkpoint is written into a temporary dir and renamed to its final name only when complete,
so a dir named `step-*` is always whole; older ones are pruned only after the new one exists.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from syllabus.data.files import sha256_file
from syllabus.errors import BadInput

STEP_DIR = re.compile(r"^step-(\d{8})$")


def capture_rng() -> dict[str, Any]:
    """This process's RNG states, as tensors and plain values (loadable with weights_only=True)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    python = state["python"]
    random.setstate((python[0], tuple(python[1]), python[2]))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def checkpoints(root: str | Path) -> list[tuple[int, Path]]:
    """Complete checkpoints under root as (step, dir), oldest first."""
    root = Path(root)
    found = []
    for path in root.iterdir() if root.exists() else []:
        match = STEP_DIR.match(path.name)
        if match and (path / "done.json").exists():
            found.append((int(match.group(1)), path))
    return sorted(found)


def latest_checkpoint(root: str | Path) -> Path | None:
    found = checkpoints(root)
    return found[-1][1] if found else None


def save_checkpoint(root: str | Path, step: int, state: dict[str, Any], keep: int = 2) -> Path:
    """Write state as checkpoint `step` (tmp dir + rename), then keep only the newest `keep`."""
    root = Path(root)
    final = root / f"step-{step:08d}"
    if (final / "done.json").exists():
        return final
    tmp = root / f".tmp-step-{step:08d}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    torch.save(state, tmp / "state.pt")
    with open(tmp / "state.pt", "rb+") as f:
        os.fsync(f.fileno())
    (tmp / "done.json").write_text(json.dumps({"step": step, "sha256": sha256_file(tmp / "state.pt")}) + "\n")
    shutil.rmtree(final, ignore_errors=True)  # an incomplete dir of the same name (no done.json)
    os.rename(tmp, final)
    _fsync_dir(root)
    for _, old in checkpoints(root)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint dir; a damaged one is a BadInput naming it."""
    path = Path(path)
    state_file = path / "state.pt"
    try:
        done = json.loads((path / "done.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        raise BadInput("incomplete checkpoint (no valid done.json)", file=path) from None
    if not state_file.exists() or sha256_file(state_file) != done.get("sha256"):
        raise BadInput("corrupt checkpoint (state.pt does not match its sha256 in done.json); "
                       "delete it to resume from the one before", file=state_file)
    try:
        return torch.load(state_file, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for a damaged file
        raise BadInput(f"unreadable checkpoint ({e.__class__.__name__})", file=state_file) from None
