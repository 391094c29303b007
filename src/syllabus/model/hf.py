"""Exact weight mapping between syllabus's Phi and transformers' PhiForCausalLM (microsoft/phi-1 layout).

Pure functions over a config and a state dict (as litgpt's convert_hf_checkpoint is): the config
each way, the state dict each way (names renamed, q/k/v split or fused), and reading an HF dir.
`Phi.from_hf` and `Phi.to_hf` build the modules from these; this module never imports the model.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from syllabus.errors import BadInput
from syllabus.model.config import PhiConfig

# ours -> transformers (the first pattern that matches; lm_head keeps its name)
_RENAMES = [
    (r"^embed_tokens\.", "model.embed_tokens."),
    (r"^final_layernorm\.", "model.final_layernorm."),
    (r"^layers\.(\d+)\.ln\.", r"model.layers.\1.input_layernorm."),
    (r"^layers\.(\d+)\.attn\.", r"model.layers.\1.self_attn."),
    (r"^layers\.(\d+)\.mlp\.", r"model.layers.\1.mlp."),
]
_RENAMES_BACK = [
    (r"^model\.embed_tokens\.", "embed_tokens."),
    (r"^model\.final_layernorm\.", "final_layernorm."),
    (r"^model\.layers\.(\d+)\.input_layernorm\.", r"layers.\1.ln."),
    (r"^model\.layers\.(\d+)\.self_attn\.", r"layers.\1.attn."),
    (r"^model\.layers\.(\d+)\.mlp\.", r"layers.\1.mlp."),
]


def _rename(name: str, table) -> str:
    for pattern, repl in table:
        new, n = re.subn(pattern, repl, name)
        if n:
            return new
    return name


def hf_config(config: PhiConfig, eot_id: int | None = None):
    from transformers import PhiConfig as HFPhiConfig

    return HFPhiConfig(
        bos_token_id=eot_id,  # codegen's convention; transformers' defaults (1 and 2) would stop generate early
        eos_token_id=eot_id,
        vocab_size=config.vocab_size,
        hidden_size=config.n_embd,
        intermediate_size=config.n_inner,
        num_hidden_layers=config.n_layer,
        num_attention_heads=config.n_head,
        num_key_value_heads=config.n_head,
        max_position_embeddings=config.block_size,
        rope_parameters={
            "rope_type": "default",
            "rope_theta": config.rope_theta,
            "partial_rotary_factor": config.rotary_dim / config.head_dim,
        },
        layer_norm_eps=config.layer_norm_eps,
        hidden_act="gelu_new",
        embd_pdrop=config.embd_pdrop,
        attention_dropout=config.attn_pdrop,
        resid_pdrop=config.resid_pdrop,
        tie_word_embeddings=False,
        qk_layernorm=False,
    )


def config_from_hf(hf, name: str = "hf") -> PhiConfig:
    """Our PhiConfig for a transformers PhiConfig; features our model lacks -> BadInput."""
    if getattr(hf, "model_type", None) != "phi":
        raise BadInput(f"architecture {getattr(hf, 'model_type', None)!r} is not phi", record=name)
    unsupported = []
    if hf.qk_layernorm:
        unsupported.append("qk_layernorm")
    if hf.num_key_value_heads not in (None, hf.num_attention_heads):
        unsupported.append("grouped-query attention (num_key_value_heads)")
    if hf.tie_word_embeddings:
        unsupported.append("tie_word_embeddings")
    if hf.hidden_act not in ("gelu_new", "gelu_pytorch_tanh"):
        unsupported.append(f"hidden_act {hf.hidden_act}")
    rope = hf.rope_parameters
    if rope.get("rope_type", "default") != "default":
        unsupported.append(f"rope_type {rope['rope_type']}")
    if unsupported:
        raise BadInput(f"unsupported phi features: {', '.join(unsupported)}", record=name)
    head_dim = hf.hidden_size // hf.num_attention_heads
    return PhiConfig(
        name=name,
        vocab_size=hf.vocab_size,
        block_size=hf.max_position_embeddings,
        n_layer=hf.num_hidden_layers,
        n_head=hf.num_attention_heads,
        n_embd=hf.hidden_size,
        n_inner=hf.intermediate_size,
        rotary_dim=int(head_dim * rope.get("partial_rotary_factor", 0.5)),
        rope_theta=float(rope["rope_theta"]),
        layer_norm_eps=hf.layer_norm_eps,
        embd_pdrop=float(hf.embd_pdrop),
        attn_pdrop=float(hf.attention_dropout or 0.0),
        resid_pdrop=float(hf.resid_pdrop),
    )


def read_hf_dir(path: Path) -> tuple[PhiConfig, dict[str, torch.Tensor]]:
    """Our config and the transformers state dict of a PhiForCausalLM dir saved by save_pretrained."""
    from transformers import PhiConfig as HFPhiConfig

    if not (path / "config.json").is_file():
        raise BadInput("not a Hugging Face model dir (no config.json)", file=path)
    try:
        hf_cfg = HFPhiConfig.from_pretrained(path)
    except (ValueError, TypeError, OSError) as e:
        raise BadInput(f"unreadable Hugging Face config ({e})", file=path / "config.json") from None
    return config_from_hf(hf_cfg, name=path.name), _read_hf_weights(path)


def state_dict_from_hf(state: dict[str, torch.Tensor], config: PhiConfig) -> dict[str, torch.Tensor]:
    """Our state dict (copied) for a transformers one: names mapped back, q/k/v fused into qkv."""
    ours = {_rename(k, _RENAMES_BACK): v.detach().clone() for k, v in state.items()}
    for i in range(config.n_layer):
        for kind in ("weight", "bias"):
            parts = [ours.pop(f"layers.{i}.attn.{p}_proj.{kind}", None) for p in "qkv"]
            if all(p is not None for p in parts):
                ours[f"layers.{i}.attn.qkv.{kind}"] = torch.cat(parts)
    return ours


def state_dict_to_hf(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The transformers state dict (copied) for ours: names mapped, qkv split into q/k/v projections."""
    out = {}
    for k, v in state.items():
        name = _rename(k, _RENAMES)
        if ".self_attn.qkv." in name:  # transformers keeps separate q/k/v projections
            for part, chunk in zip("qkv", v.detach().chunk(3)):
                out[name.replace(".qkv.", f".{part}_proj.")] = chunk.clone()
        else:
            out[name] = v.detach().clone()
    return out


def _read_hf_weights(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    files = sorted(path.glob("*.safetensors"))
    if not files:
        raise BadInput("no *.safetensors weights", file=path)
    state: dict[str, torch.Tensor] = {}
    for f in files:
        state.update(load_file(str(f)))
    return state
