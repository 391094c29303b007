"""Speed of the syllabus phi model vs transformers' PhiForCausalLM, same config and weights, on CPU.

1. Training step (forward + backward + cross-entropy) tokens/s, and peak memory (each side in its
   own subprocess so its max RSS is its own).   Goal: ours >= 1.0x, memory no worse.
2. Greedy generation with a KV cache, tokens/s: our generate_ids vs HF `generate`.   Goal: >= 1.5x.
3. With a CUDA GPU: bf16 forward+backward MFU of phi-1-small at sequence length 2048.

Timed runs alternate between the two sides and keep each side's best time, so that load from
other processes on a shared machine hits both alike.

    python benchmarks/model_speed.py [--threads N]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from syllabus.model import Phi, PhiConfig
from syllabus.model.generate import generate_ids

CONFIG = PhiConfig.preset("tiny")  # 4 layers, d 256, vocab 4096: CPU-sized, the shape of phi-1
BATCH, SEQ, TRAIN_STEPS = 4, 256, 6
GEN_BATCH, GEN_PROMPT, GEN_NEW, GEN_REPEATS = 4, 32, 64, 3


def models(seed: int = 0):
    torch.manual_seed(seed)
    ours = Phi(CONFIG)
    return ours, ours.to_hf()


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024


def train_step_fn(model, side: str, x: torch.Tensor):
    forward = model if side == "ours" else (lambda ids: model(ids).logits)

    def step():
        logits = forward(x[:, :-1])
        F.cross_entropy(logits.flatten(0, 1), x[:, 1:].flatten()).backward()
        model.zero_grad(set_to_none=True)

    return step


def train_batch() -> torch.Tensor:
    return torch.randint(0, CONFIG.vocab_size, (BATCH, SEQ + 1), generator=torch.Generator().manual_seed(1))


def memory_worker(side: str) -> dict:
    """How far two training steps raise this process's peak RSS above the built model."""
    ours, hf = models()
    model = (ours if side == "ours" else hf).train()
    del ours, hf
    step = train_step_fn(model, side, train_batch())
    base = rss_mb()
    step()
    step()
    return {"peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - base}


def peak_memory(side: str, threads: int) -> float:
    out = subprocess.run(
        [sys.executable, __file__, "--memory-worker", side, "--threads", str(threads)],
        capture_output=True, text=True, check=True, env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])["peak_mb"]


def fastest(runs: dict, repeats: int) -> dict[str, float]:
    """Best wall time of each run, the runs interleaved so that load from other processes hits both alike."""
    for run in runs.values():
        run()  # warm-up (allocator, kernels)
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(repeats):
        for name, run in runs.items():
            t = time.perf_counter()
            run()
            best[name] = min(best[name], time.perf_counter() - t)
    return best


def training() -> tuple[float, float]:
    ours, hf = models()
    x = train_batch()
    best = fastest({"ours": train_step_fn(ours.train(), "ours", x), "hf": train_step_fn(hf.train(), "hf", x)}, TRAIN_STEPS)
    return BATCH * SEQ / best["ours"], BATCH * SEQ / best["hf"]


@torch.no_grad()
def generation() -> tuple[float, float]:
    ours, hf = models()
    ours.eval(), hf.eval()
    prompts = torch.randint(0, CONFIG.vocab_size, (GEN_BATCH, GEN_PROMPT), generator=torch.Generator().manual_seed(2))

    def run_ours():
        out = generate_ids(ours, prompts.tolist(), GEN_NEW)
        assert all(len(o) == GEN_NEW for o in out)

    def run_hf():
        out = hf.generate(prompts, attention_mask=torch.ones_like(prompts), do_sample=False, max_new_tokens=GEN_NEW,
                          min_new_tokens=GEN_NEW, eos_token_id=None, pad_token_id=0)
        assert out.shape[1] == GEN_PROMPT + GEN_NEW

    best = fastest({"ours": run_ours, "hf": run_hf}, GEN_REPEATS)
    return GEN_BATCH * GEN_NEW / best["ours"], GEN_BATCH * GEN_NEW / best["hf"]


def gpu_mfu(peak_tflops: float) -> dict:
    """bf16 autocast forward+backward of phi-1-small at 2048 tokens; model FLOPs / (time x peak)."""
    config = PhiConfig.preset("phi-1-small")
    model = Phi(config).cuda()
    batch, seq = 4, config.block_size
    x = torch.randint(0, config.vocab_size, (batch, seq + 1), device="cuda")
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = F.cross_entropy(model(x[:, :-1]).flatten(0, 1).float(), x[:, 1:].flatten())
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    for _ in range(3):
        step()
    torch.cuda.synchronize()
    t, steps = time.perf_counter(), 10
    for _ in range(steps):
        step()
    torch.cuda.synchronize()
    seconds = (time.perf_counter() - t) / steps
    # 6 FLOPs per parameter per token (matmuls, fwd+bwd) + causal attention scores and values
    n = model.num_params() - config.vocab_size * config.n_embd  # the embedding lookup is not a matmul
    flops_per_token = 6 * n + 6 * config.n_layer * config.n_embd * seq
    achieved = flops_per_token * batch * seq / seconds
    return {"tokens_per_s": batch * seq / seconds, "tflops": achieved / 1e12, "mfu": achieved / (peak_tflops * 1e12)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch CPU threads")
    parser.add_argument("--peak-tflops", type=float, default=989.0, help="GPU bf16 dense peak (H100 SXM: 989)")
    parser.add_argument("--memory-worker", choices=["ours", "hf"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.memory_worker:
        print(json.dumps(memory_worker(args.memory_worker)))
        return

    print(f"config {CONFIG.name}: {Phi(CONFIG).num_params() / 1e6:.1f}M params, {args.threads} CPU threads")
    train_ours, train_hf = training()
    print(f"train step (fwd+bwd, batch {BATCH}x{SEQ}): ours {train_ours:.0f} tok/s, "
          f"transformers {train_hf:.0f} tok/s -> {train_ours / train_hf:.2f}x (goal >= 1.0x)")
    mem_ours, mem_hf = peak_memory("ours", args.threads), peak_memory("hf", args.threads)
    print(f"train step peak memory: ours +{mem_ours:.0f} MB, transformers +{mem_hf:.0f} MB "
          f"-> {mem_ours / mem_hf:.2f}x of transformers' (goal <= 1.0x)")
    gen_ours, gen_hf = generation()
    print(f"greedy generation (batch {GEN_BATCH}, {GEN_PROMPT}+{GEN_NEW} tokens): ours {gen_ours:.0f} tok/s, "
          f"transformers generate {gen_hf:.0f} tok/s -> {gen_ours / gen_hf:.2f}x (goal >= 1.5x)")
    if torch.cuda.is_available():
        print(f"phi-1-small bf16 fwd+bwd at seq 2048 on {torch.cuda.get_device_name()}: {json.dumps(gpu_mfu(args.peak_tflops))}")


if __name__ == "__main__":
    main()
