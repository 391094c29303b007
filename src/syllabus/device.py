"""Where torch work runs when nobody says: the GPU when there is one, else the CPU."""

from __future__ import annotations


def default_device(requested: str | None = None) -> str:
    """`requested` when given, else "cuda" if a GPU is visible, else "cpu"."""
    if requested:
        return requested
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
