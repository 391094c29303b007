"""The phi-1 transformer (Gunasekar et al. 2023, "Textbooks Are All You Need"), read top to bottom.

Each block runs attention and the MLP in parallel on one LayerNorm's output,
x + attn(ln(x)) + mlp(ln(x)) (as in GPT-J); rotary position embeddings turn only the first
`rotary_dim` dims of each head; every linear layer has a bias and the lm_head is not tied to
the embedding. Parameter names follow transformers' PhiForCausalLM but for the fused qkv (see hf.py).

A *model dir* holds config.json + model.safetensors (+ tokenizer.json, copied by whoever saves).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from syllabus.data.files import atomic_path, atomic_write_json, read_json
from syllabus.errors import BadInput
from syllabus.model.config import PhiConfig

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
ARCHITECTURE = "syllabus-phi"


_rotary_tables: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}


def rotary_table(dim: int, theta: float, length: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of the rotation angles of positions 0..length-1, each (length, dim), computed once."""
    key = (dim, theta, length, device)
    if key not in _rotary_tables:
        with torch.inference_mode(False):  # maybe first built while generating, and used in training too
            inv_freq = 1.0 / theta ** (torch.arange(0, dim, 2, dtype=torch.float, device=device) / dim)
            freqs = torch.arange(length, device=device).float()[:, None] * inv_freq  # (length, dim/2)
            angles = torch.cat((freqs, freqs), dim=-1)
            _rotary_tables[key] = angles.cos(), angles.sin()
    return _rotary_tables[key]


def rotary_cos_sin(position_ids: torch.Tensor, config: PhiConfig, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of every position's rotation angles, each (B, 1, 1, T, rotary_dim)."""
    cos, sin = rotary_table(config.rotary_dim, config.rope_theta, config.block_size, position_ids.device)
    return cos[position_ids][:, None, None].to(dtype), sin[position_ids][:, None, None].to(dtype)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate the first rotary_dim dims of each head of x (..., T, hs); the rest pass through."""
    dim = cos.size(-1)
    x_rot, x_pass = x[..., :dim], x[..., dim:]
    x1, x2 = x_rot.chunk(2, dim=-1)
    rotated = torch.cat((-x2, x1), dim=-1)
    return torch.cat((x_rot * cos + rotated * sin, x_pass), dim=-1)


class KVCache:
    """Keys and values of the positions seen so far, for every layer, preallocated to max_len."""

    def __init__(self, config: PhiConfig, batch_size: int, max_len: int, device=None, dtype=torch.float32):
        shape = (batch_size, config.n_head, max_len, config.head_dim)
        self.keys = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(config.n_layer)]
        self.values = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(config.n_layer)]
        self.length = 0  # positions filled, the same in every layer
        self.max_len = max_len

    def select(self, rows: torch.Tensor) -> None:
        """Keep only these batch rows (finished sequences leave the batch)."""
        self.keys = [k[rows] for k in self.keys]
        self.values = [v[rows] for v in self.values]


class CausalSelfAttention(nn.Module):
    def __init__(self, config: PhiConfig):
        super().__init__()
        self.n_head, self.head_dim = config.n_head, config.head_dim
        self.qkv = nn.Linear(config.n_embd, 3 * config.n_embd)  # query, key, value of all heads in one matmul
        self.dense = nn.Linear(config.n_embd, config.n_embd)
        self.dropout = config.attn_pdrop

    def forward(self, x, cos, sin, mask=None, kv=None, past=0):
        B, T, C = x.size()
        qkv = self.qkv(x).view(B, T, 3, self.n_head, self.head_dim).transpose(1, 3)  # (B, nh, 3, T, hs)
        q, k = apply_rotary(qkv[:, :, :2], cos, sin).unbind(2)  # queries and keys turn together
        v = qkv[:, :, 2]  # (B, nh, T, hs) like q and k
        if kv is not None:
            cache_k, cache_v = kv
            cache_k[:, :, past : past + T] = k
            cache_v[:, :, past : past + T] = v
            k, v = cache_k[:, :, : past + T], cache_v[:, :, : past + T]  # (B, nh, past+T, hs)
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0, is_causal=mask is None and T > 1
        )
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.dense(y)


class MLP(nn.Module):
    def __init__(self, config: PhiConfig):
        super().__init__()
        self.fc1 = nn.Linear(config.n_embd, config.n_inner)
        self.fc2 = nn.Linear(config.n_inner, config.n_embd)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


class Block(nn.Module):
    def __init__(self, config: PhiConfig):
        super().__init__()
        self.ln = nn.LayerNorm(config.n_embd, eps=config.layer_norm_eps)
        self.attn = CausalSelfAttention(config)
        self.mlp = MLP(config)
        self.resid_drop = nn.Dropout(config.resid_pdrop)

    def forward(self, x, cos, sin, mask=None, kv=None, past=0):
        h = self.ln(x)
        attn, mlp = self.attn(h, cos, sin, mask, kv, past), self.mlp(h)
        if self.training:  # dropout is the identity in eval; skipping its calls speeds up decoding
            attn, mlp = self.resid_drop(attn), self.resid_drop(mlp)
        return attn + mlp + x


def attention_mask_for(attention_mask: torch.Tensor | None, past: int, T: int, device) -> torch.Tensor | None:
    """None where SDPA's own causal mask is right; else a bool mask (B, 1, T, past+T), True = attend.

    attention_mask (B, past+T) is 1 for real tokens and 0 for (left) padding.
    """
    if attention_mask is None and (past == 0 or T == 1):
        return None
    q_pos = torch.arange(past, past + T, device=device)[:, None]
    k_pos = torch.arange(past + T, device=device)[None, :]
    allowed = k_pos <= q_pos  # (T, S)
    if attention_mask is None:
        return allowed[None, None]
    # padding keys are hidden, but each position still sees itself so a padding row is never all -inf
    return allowed & (attention_mask[:, None, None, :].bool() | (k_pos == q_pos))


class Phi(nn.Module):
    def __init__(self, config: PhiConfig):
        super().__init__()
        self.config = config
        self.embed_tokens = nn.Embedding(config.vocab_size, config.n_embd)
        self.embed_drop = nn.Dropout(config.embd_pdrop)
        self.layers = nn.ModuleList([Block(config) for _ in range(config.n_layer)])
        self.final_layernorm = nn.LayerNorm(config.n_embd, eps=config.layer_norm_eps)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear):
            nn.init.zeros_(module.bias)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        cache: KVCache | None = None,
        last_only: bool = False,
    ) -> torch.Tensor:
        """Logits (B, T, vocab), or (B, 1, vocab) with last_only.

        With a cache, input_ids are the T tokens after the cache.length already seen, and
        attention_mask (if any) covers all cache.length + T positions.
        """
        B, T = input_ids.size()
        past = cache.length if cache is not None else 0
        if cache is not None and past + T > cache.max_len:
            raise ValueError(f"KV cache holds {cache.max_len} positions, asked for {past + T}")
        if position_ids is None:
            if attention_mask is not None:  # left padding: real tokens count from 0
                position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)[:, past:]
            else:
                position_ids = torch.arange(past, past + T, device=input_ids.device)[None]
        mask = attention_mask_for(attention_mask, past, T, input_ids.device)

        x = self.embed_drop(self.embed_tokens(input_ids))  # (B, T, C)
        cos, sin = rotary_cos_sin(position_ids, self.config, x.dtype)
        for i, layer in enumerate(self.layers):
            kv = (cache.keys[i], cache.values[i]) if cache is not None else None
            x = layer(x, cos, sin, mask, kv, past)
        if cache is not None:
            cache.length += T
        x = self.final_layernorm(x[:, -1:] if last_only else x)
        if x.size(1) == 1:
            # one position per row, as in decoding: (vocab, C) @ (C, B) streams the big lm_head weight once;
            # x @ weight.T as nn.Linear does re-reads it per row on CPU (MKL), ~2x slower at batch 4 with phi-1's vocab
            return torch.addmm(self.lm_head.bias[:, None], self.lm_head.weight, x[:, 0].t()).t()[:, None]
        return self.lm_head(x)

    # ── model dirs ───────────────────────────────────────────────────────────────────────────

    def save_pretrained(self, path: str | Path) -> Path:
        """Write config.json and model.safetensors into the model dir `path` (atomically)."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().contiguous() for k, v in self.state_dict().items()}
        with atomic_path(path / WEIGHTS_FILE) as tmp:
            save_file(state, str(tmp), metadata={"format": "pt"})
        atomic_write_json(path / CONFIG_FILE, {"architecture": ARCHITECTURE, **self.config.to_dict()})
        return path

    @classmethod
    def from_pretrained(cls, path: str | Path, device=None, dtype: torch.dtype | None = None) -> Phi:
        """Load a syllabus model dir, or a Hugging Face phi dir (config.json with model_type "phi")."""
        path = Path(path)
        if not path.is_dir():
            raise BadInput("no such model dir", file=path)
        config_dict = read_json(path / CONFIG_FILE)
        if config_dict.get("architecture") != ARCHITECTURE:
            if "model_type" in config_dict:
                return cls.from_hf(path).to(device=device, dtype=dtype)
            raise BadInput(f"not a model config: expected architecture {ARCHITECTURE!r}", file=path / CONFIG_FILE)
        config_dict.pop("architecture")
        config = PhiConfig.from_dict(config_dict, file=path / CONFIG_FILE)
        weights = path / WEIGHTS_FILE
        try:
            state = load_file(str(weights))
        except FileNotFoundError:
            raise BadInput("no such file", file=weights) from None
        except SafetensorError as e:
            raise BadInput(f"not a safetensors file ({e})", file=weights) from None
        return cls.from_state_dict(config, state, file=weights).to(device=device, dtype=dtype)

    @classmethod
    def from_state_dict(cls, config: PhiConfig, state: dict[str, torch.Tensor], file=None) -> Phi:
        """Build a model around these weights (no copy); missing, extra or misshapen keys -> BadInput."""
        with torch.device("meta"):  # skip random init: every parameter is replaced below
            model = cls(config)
        expected = model.state_dict()
        problems = []
        for label, keys in [
            ("missing keys", sorted(set(expected) - set(state))),
            ("unexpected keys", sorted(set(state) - set(expected))),
            ("wrong shapes", [
                f"{k} {tuple(state[k].shape)} vs {tuple(expected[k].shape)}"
                for k in sorted(set(state) & set(expected)) if state[k].shape != expected[k].shape
            ]),
        ]:
            if keys:
                more = f" and {len(keys) - 6} more" if len(keys) > 6 else ""
                problems.append(f"{label}: {', '.join(keys[:6])}{more}")
        if problems:
            raise BadInput(f"weights do not fit {config.name} ({'; '.join(problems)})", file=file)
        model.load_state_dict(state, assign=True)
        return model

    # ── Hugging Face transformers interop (hf.py) ──────────────────────────────────────────

    @classmethod
    def from_hf(cls, dir_or_model) -> Phi:
        """Our Phi with the weights of a PhiForCausalLM (a module, or a dir saved by save_pretrained)."""
        from transformers import PhiForCausalLM

        from syllabus.model import hf

        if isinstance(dir_or_model, (str, Path)):
            config, state = hf.read_hf_dir(Path(dir_or_model))
        elif isinstance(dir_or_model, PhiForCausalLM):
            config, state = hf.config_from_hf(dir_or_model.config), dir_or_model.state_dict()
        else:
            raise BadInput(f"{type(dir_or_model).__name__} is not a PhiForCausalLM")
        return cls.from_state_dict(config, hf.state_dict_from_hf(state, config),
                                   file=dir_or_model if isinstance(dir_or_model, (str, Path)) else None)

    def to_hf(self, path: str | Path | None = None, eot_id: int | None = None):
        """A transformers PhiForCausalLM carrying a copy of these weights; saved to `path` when given.

        eot_id (the tokenizer's <|endoftext|>) becomes the exported model's bos and eos token.
        """
        from transformers import PhiForCausalLM

        from syllabus.model import hf

        exported = PhiForCausalLM(hf.hf_config(self.config, eot_id))
        exported.load_state_dict(hf.state_dict_to_hf(self.state_dict()), strict=True)
        exported.to(next(self.parameters()).dtype)
        exported.eval()
        if path is not None:
            exported.save_pretrained(path)
        return exported
