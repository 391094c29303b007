"""What a recipe will cost before it runs: training tokens, FLOPs and GPU-hours, teacher tokens.

Training compute is the usual 6 · parameters · tokens (forward + backward). GPU-hours assume an
A100's 312 TFLOP/s bf16 peak at a stated utilisation (MFU). For comparison, the phi-1 paper reports
770 A100-hours for its whole run.
"""

from __future__ import annotations

from typing import Any

import torch

from syllabus.config import Params, StageSpec

A100_BF16_FLOPS = 312e12
ASSUMED_MFU = 0.4


def model_parameters(preset: str, overrides: dict[str, Any] | None = None) -> int:
    from syllabus.model import Phi, PhiConfig

    with torch.device("meta"):
        return Phi(PhiConfig.preset(preset, **(overrides or {}))).num_params()


def training_estimate(params: Params, seq_len: int | None) -> dict[str, Any]:
    """Tokens, FLOPs and A100-hours of a train.pretrain / train.finetune stage."""
    from syllabus.train.config import config_from_dict

    config = config_from_dict({"preset": params.preset, **params.overrides})
    n_params = model_parameters(config.model, config.model_overrides)
    tokens = config.max_steps * config.batch_size * (seq_len or 2048)
    flops = 6 * n_params * tokens
    return {
        "parameters": n_params,
        "tokens": tokens,
        "flops": flops,
        "a100_hours": flops / (A100_BF16_FLOPS * ASSUMED_MFU) / 3600,
    }


def teacher_estimate(params: Params) -> dict[str, Any]:
    """Upper bound on teacher completion tokens of a synthesis stage (n prompts x max_tokens)."""
    return {"teacher_completion_tokens": params.n * params.max_tokens, "teacher": params.teacher}


def stage_estimate(spec: StageSpec, params: Params, specs: dict[str, StageSpec]) -> dict[str, Any]:
    if spec.uses in ("train.pretrain", "train.finetune"):
        data = specs.get(str(spec.inputs.get("data")))
        seq_len = data.params.get("seq_len") if data is not None else None
        return training_estimate(params, seq_len)
    if spec.uses.startswith("synth."):
        return teacher_estimate(params)
    return {}


def describe(estimate: dict[str, Any]) -> str:
    parts = []
    if "tokens" in estimate:
        parts.append(f"{estimate['parameters'] / 1e6:,.0f}M params, {estimate['tokens'] / 1e9:,.2f}B tokens, "
                     f"{estimate['flops']:.2e} FLOPs ≈ {estimate['a100_hours']:,.1f} A100-h at {ASSUMED_MFU:.0%} MFU")
    if "teacher_completion_tokens" in estimate:
        parts.append(f"≤ {estimate['teacher_completion_tokens'] / 1e6:,.2f}M teacher tokens ({estimate['teacher']})")
    return "; ".join(parts)
