"""Speed of the syllabus phi model vs transformers' PhiForCausalLM, same config and weights, on CPU.

1. Training step (forward + backward + cross-entropy) tokens/s and peak memory; each side runs
   in its own subprocess so its max RSS is its own.   Goal: ours >= 1.0x, memory no worse.
2. Greedy generation with a KV cache, tokens/s: our generate_ids vs HF `generate`.   Goal: >= 1.5x.
3. With a CUDA GPU: bf16 forward+backward MFU of phi-1-small at sequence length 2048.

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
BATCH, SEQ, TRAIN_STEPS = 4, 256, 5
GEN_BATCH, GEN_PROMPT, GEN_NEW = 4, 32, 64


def models(seed: int = 0):
    torch.manual_seed(seed)
    ours = Phi(CONFIG)
    return ours, ours.to_hf()


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024


def train_worker(side: str) -> dict:
    """tokens/s of forward+backward, and how far the step raised the process's peak RSS."""
    ours, hf = models()
    model = ours if side == "ours" else hf
    forward = (lambda x: model(x)) if side == "ours" else (lambda x: model(x).logits)
    del ours, hf
    model.train()
    x = torch.randint(0, CONFIG.vocab_size, (BATCH, SEQ + 1), generator=torch.Generator().manual_seed(1))
    base = rss_mb()

    def step():
        logits = forward(x[:, :-1])
        loss = F.cross_entropy(logits.flatten(0, 1), x[:, 1:].flatten())
        loss.backward()
        model.zero_grad(set_to_none=True)

    step()  # warm-up (allocator, kernels)
    times = []
    for _ in range(TRAIN_STEPS):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"tokens_per_s": BATCH * SEQ / sorted(times)[len(times) // 2], "peak_mb": peak - base}


def run_train_side(side: str, threads: int) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--train-worker", side, "--threads", str(threads)],
        capture_output=True, text=True, check=True, env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


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

    rates = []
    for run in (run_ours, run_hf):
        run()  # warm-up
        times = []
        for _ in range(3):
            t = time.perf_counter()
            run()
            times.append(time.perf_counter() - t)
        rates.append(GEN_BATCH * GEN_NEW / min(times))
    return rates[0], rates[1]


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
    parser.add_argument("--train-worker", choices=["ours", "hf"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.train_worker:
        print(json.dumps(train_worker(args.train_worker)))
        return

    print(f"config {CONFIG.name}: {Phi(CONFIG).num_params() / 1e6:.1f}M params, {args.threads} CPU threads")
    ours, hf = run_train_side("ours", args.threads), run_train_side("hf", args.threads)
    print(f"train step (fwd+bwd, batch {BATCH}x{SEQ}): ours {ours['tokens_per_s']:.0f} tok/s, "
          f"transformers {hf['tokens_per_s']:.0f} tok/s -> {ours['tokens_per_s'] / hf['tokens_per_s']:.2f}x (goal >= 1.0x)")
    print(f"train step peak memory: ours +{ours['peak_mb']:.0f} MB, transformers +{hf['peak_mb']:.0f} MB "
          f"-> {ours['peak_mb'] / hf['peak_mb']:.2f}x of transformers' (goal <= 1.0x)")
    gen_ours, gen_hf = generation()
    print(f"greedy generation (batch {GEN_BATCH}, {GEN_PROMPT}+{GEN_NEW} tokens): ours {gen_ours:.0f} tok/s, "
          f"transformers generate {gen_hf:.0f} tok/s -> {gen_ours / gen_hf:.2f}x (goal >= 1.5x)")
    if torch.cuda.is_available():
        print(f"phi-1-small bf16 fwd+bwd at seq 2048 on {torch.cuda.get_device_name()}: {json.dumps(gpu_mfu(args.peak_tflops))}")


if __name__ == "__main__":
    main()
