"""Speed of the syllabus phi model vs transformers' PhiForCausalLM, same config and weights, on CPU.

1. Training step (forward + backward + cross-entropy) tokens/s, and peak memory (each side in its
   own subprocess so its max RSS is its own).   Goal: ours >= 1.0x, memory no worse.
2. Greedy generation with a KV cache, tokens/s: our generate_ids vs HF `generate` (use_cache, the
   same prompts, the same number of new tokens, no early stop), at batch 1 and 4, on the tiny config
   and on a 77M one with phi-1's vocabulary (where the matmuls weigh more).   Goal: >= 1.5x.
3. With a CUDA GPU: bf16 forward+backward MFU of phi-1-small at sequence length 2048.

Timed runs alternate between the two sides and keep each side's best wall and CPU time, so that
load from other processes hits both alike; CPU time is the steadier of the two on a busy machine.
Both sides run on one torch thread unless --threads says otherwise.

    python benchmarks/model_speed.py [--threads N]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from syllabus.model import Phi, PhiConfig
from syllabus.model.generate import generate_ids

CONFIG = PhiConfig.preset("tiny")  # 4 layers, d 256, vocab 4096: CPU-sized, the shape of phi-1
BIGGER = PhiConfig(name="77M", n_layer=8, n_head=8, n_embd=512, n_inner=2048)  # phi-1's vocab and context
BATCH, SEQ, TRAIN_STEPS = 4, 256, 6
GEN_PROMPT = 32
# (config, batch, new tokens, timed repeats per side)
GEN_CASES = [(CONFIG, 1, 64, 4), (CONFIG, 4, 64, 4), (BIGGER, 1, 32, 3), (BIGGER, 4, 32, 3)]


def models(config: PhiConfig = CONFIG, seed: int = 0):
    torch.manual_seed(seed)
    ours = Phi(config)
    return ours, ours.to_hf()


def proc_status_mb(field: str) -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":")) / 1024


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
    base = proc_status_mb("VmRSS")
    step()
    step()
    # VmHWM, not getrusage's ru_maxrss: Linux carries the parent's peak RSS over fork+exec into ru_maxrss
    return {"peak_mb": proc_status_mb("VmHWM") - base}


def peak_memory(side: str, threads: int) -> float:
    out = subprocess.run(
        [sys.executable, __file__, "--memory-worker", side, "--threads", str(threads)],
        capture_output=True, text=True, check=True, env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])["peak_mb"]


def fastest(runs: dict, repeats: int) -> dict[str, tuple[float, float]]:
    """Best (wall, CPU) seconds of each run, the runs interleaved so that load from other processes hits both alike."""
    for run in runs.values():
        run()  # warm-up (allocator, kernels)
    best = {name: (float("inf"), float("inf")) for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            wall, cpu = time.perf_counter(), time.process_time()
            run()
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            best[name] = (min(best[name][0], wall), min(best[name][1], cpu))
    return best


def report(what: str, tokens: int, best: dict[str, tuple[float, float]], peer: str, goal: float) -> None:
    """One line: tokens/s of each side by wall clock, and our speed-up by wall clock and by CPU time."""
    (ours_wall, ours_cpu), (hf_wall, hf_cpu) = best["ours"], best["hf"]
    print(f"{what}: ours {tokens / ours_wall:.0f} tok/s, {peer} {tokens / hf_wall:.0f} tok/s -> "
          f"{hf_wall / ours_wall:.2f}x wall, {hf_cpu / ours_cpu:.2f}x CPU time (goal >= {goal}x)", flush=True)


def training() -> dict[str, tuple[float, float]]:
    ours, hf = models()
    x = train_batch()
    return fastest({"ours": train_step_fn(ours.train(), "ours", x), "hf": train_step_fn(hf.train(), "hf", x)}, TRAIN_STEPS)


def generation(config: PhiConfig, batch: int, new_tokens: int, repeats: int) -> dict[str, tuple[float, float]]:
    """Greedy decoding of the same random prompts by both; the outputs must agree."""
    ours, hf = models(config)
    ours.eval(), hf.eval()
    prompts = torch.randint(0, config.vocab_size, (batch, GEN_PROMPT), generator=torch.Generator().manual_seed(2))
    outputs = {}

    def run_ours():
        outputs["ours"] = generate_ids(ours, prompts.tolist(), new_tokens)

    @torch.no_grad()
    def run_hf():
        out = hf.generate(prompts, attention_mask=torch.ones_like(prompts), do_sample=False, use_cache=True,
                          max_new_tokens=new_tokens, min_new_tokens=new_tokens, eos_token_id=None, pad_token_id=0)
        outputs["hf"] = out[:, GEN_PROMPT:].tolist()

    best = fastest({"ours": run_ours, "hf": run_hf}, repeats)
    assert outputs["ours"] == outputs["hf"], "greedy outputs differ from transformers'"
    return best


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
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads, both sides")
    parser.add_argument("--peak-tflops", type=float, default=989.0, help="GPU bf16 dense peak (H100 SXM: 989)")
    parser.add_argument("--memory-worker", choices=["ours", "hf"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.memory_worker:
        print(json.dumps(memory_worker(args.memory_worker)))
        return

    print(f"torch.set_num_threads({args.threads}) on both sides; config {CONFIG.name}: "
          f"{Phi(CONFIG).num_params() / 1e6:.1f}M params")
    report(f"train step (fwd+bwd, batch {BATCH}x{SEQ})", BATCH * SEQ, training(), "PhiForCausalLM", 1.0)
    mem_ours, mem_hf = peak_memory("ours", args.threads), peak_memory("hf", args.threads)
    print(f"train step peak memory: ours +{mem_ours:.0f} MB, transformers +{mem_hf:.0f} MB "
          f"-> {mem_ours / mem_hf:.2f}x of transformers' (goal <= 1.0x)")
    for config, batch, new_tokens, repeats in GEN_CASES:
        what = f"greedy generation, {config.name} batch {batch}, {GEN_PROMPT}+{new_tokens} tokens"
        report(what, batch * new_tokens, generation(config, batch, new_tokens, repeats), "transformers generate", 1.5)
    if torch.cuda.is_available():
        print(f"phi-1-small bf16 fwd+bwd at seq 2048 on {torch.cuda.get_device_name()}: {json.dumps(gpu_mfu(args.peak_tflops))}")


if __name__ == "__main__":
    main()
