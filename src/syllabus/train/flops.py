"""Training FLOPs and what a GPU can do: the arithmetic behind MFU in the logs and GPU-hours in the dry run.

FLOPs per trained token are 6 x parameters (forward + backward of every matmul) plus the attention
scores, 12 x layers x width x context (PaLM, appendix B). MFU is those FLOPs per second over the peak
dense bf16 FLOP/s of the GPUs that ran them.
"""

from __future__ import annotations

import re

# dense bf16 tensor-core peak, FLOP/s, from the vendors' data sheets (SXM parts; no sparsity)
GPU_PEAK_FLOPS: dict[str, float] = {
    "H200": 989e12,
    "H100": 989e12,
    "A100": 312e12,
    "L40S": 362e12,
    "A10G": 70e12,
    "L4": 121e12,
    "V100": 125e12,  # fp16: V100 has no bf16
}


def flops_per_token(n_params: int, n_layer: int, n_embd: int, seq_len: int) -> float:
    return 6 * n_params + 12 * n_layer * n_embd * seq_len


def peak_flops(gpu_name: str) -> float | None:
    """The peak of a GPU named like torch.cuda.get_device_name() ('NVIDIA H100 80GB HBM3') or 'H100'."""
    words = set(re.split(r"[\s_-]+", gpu_name.upper()))
    return next((flops for key, flops in GPU_PEAK_FLOPS.items() if key in words), None)
