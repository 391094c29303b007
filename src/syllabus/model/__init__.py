"""The phi-1 model: config presets, the PyTorch module, generation and transformers interop."""

from syllabus.model.config import PRESETS, PhiConfig
from syllabus.model.phi import KVCache, Phi

__all__ = ["PRESETS", "KVCache", "Phi", "PhiConfig"]
