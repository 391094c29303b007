"""The phi architecture's hyper-parameters, with the paper's models as named presets."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

from syllabus.errors import BadInput


@dataclass(frozen=True)
class PhiConfig:
    name: str = "custom"
    vocab_size: int = 51200  # padded past the tokenizer's 50257 for matmul-friendly shapes
    block_size: int = 2048  # context length
    n_layer: int = 24
    n_head: int = 32
    n_embd: int = 2048
    n_inner: int = 8192  # MLP width
    rotary_dim: int = 32  # rotary embeddings cover only the first rotary_dim dims of each head
    rope_theta: float = 10000.0
    layer_norm_eps: float = 1e-5
    embd_pdrop: float = 0.0
    attn_pdrop: float = 0.0
    resid_pdrop: float = 0.0

    def __post_init__(self):
        if self.n_embd % self.n_head:
            raise BadInput(f"n_embd {self.n_embd} is not a multiple of n_head {self.n_head}", record=self.name)
        if self.rotary_dim % 2 or not 0 < self.rotary_dim <= self.head_dim:
            raise BadInput(f"rotary_dim {self.rotary_dim} must be even and at most head_dim {self.head_dim}", record=self.name)

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    @classmethod
    def preset(cls, name: str, **overrides) -> PhiConfig:
        if name not in PRESETS:
            raise BadInput(f"unknown model preset {name!r}; known: {', '.join(PRESETS)}")
        return replace(PRESETS[name], **overrides)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict, file=None) -> PhiConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise BadInput(f"unknown model config keys: {', '.join(unknown)}", file=file)
        return cls(**d)


PRESETS: dict[str, PhiConfig] = {
    c.name: c
    for c in [
        # Gunasekar et al. 2023, "Textbooks Are All You Need", section 2.3
        PhiConfig(name="phi-1", n_layer=24, n_head=32, n_embd=2048, n_inner=8192),
        PhiConfig(name="phi-1-small", n_layer=20, n_head=16, n_embd=1024, n_inner=4096),
        # a few million parameters: CPU tests and the demo
        PhiConfig(name="tiny", vocab_size=4096, block_size=512, n_layer=4, n_head=4, n_embd=256, n_inner=1024),
    ]
}
