"""What a lent GPU node does with the phi-1 recipe, in under 8 minutes (H100/H200; every visible GPU):

1. phi-1-small, bf16 autocast, sequence 2048: step time, tokens/s and MFU of forward + backward + AdamW,
   and which scaled_dot_product_attention kernels accept our inputs (flash, memory-efficient, cuDNN, math).
2. The same step wrapped in DDP and in FSDP2 (torchrun, one process per GPU; on one GPU a process group
   of one, which measures what each wrapper costs): step time side by side.
3. 200 steps of pretraining from a packed set (standard-library code, BPE tokenizer, sequences of 2048),
   launched by a recipe exactly as `syllabus run` does (engine torchrun, preset phi-1-pretrain with
   phi-1-small, torch.compile), with its own tokens/s and MFU from metrics.jsonl.
4. Its Hugging Face export loaded by transformers: greedy generate, stopped at <|endoftext|>?, and the
   same tokens as syllabus's own generate.

    PYTHONPATH=src python benchmarks/gpu_check.py [--out DIR]        # on a GPU machine
    PYTHONPATH=src python benchmarks/gpu_check.py --cpu-smoke        # the same code paths, tiny, on CPU

Without a GPU (and without --cpu-smoke) it prints one line and exits 0. Results: OUT/gpu_check.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
BUDGET_S = 8 * 60


def scale(cpu_smoke: bool) -> dict:
    """The sizes of a real check, or of a CPU smoke run through the same code."""
    if cpu_smoke:
        return {"model": "phi-1-small", "overrides": {"n_layer": 2, "n_embd": 64, "n_head": 2, "n_inner": 256},
                "seq": 64, "micro": 2, "timed_steps": 2, "train_steps": 6, "files": 150, "vocab": 1024,
                "compile": False}
    return {"model": "phi-1-small", "overrides": {}, "seq": 2048, "micro": 8, "timed_steps": 10,
            "train_steps": 200, "files": 3000, "vocab": 8192, "compile": True}


# ── 1 + 2: one step of phi-1-small, plain, DDP and FSDP2 (runs under torchrun) ────────────────


def attention_kernels(model, x) -> list[str]:
    """The SDPA kernels that accept our attention's inputs; the dispatcher takes the first (flash first)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    accepted = []
    for name in ("FLASH_ATTENTION", "EFFICIENT_ATTENTION", "CUDNN_ATTENTION", "MATH"):
        try:
            with sdpa_kernel([getattr(SDPBackend, name)]), torch.no_grad(), torch.autocast(x.device.type, torch.bfloat16):
                model(x[:1, :-1])
            accepted.append(name.lower().removesuffix("_attention"))
        except RuntimeError:
            pass
    return accepted


def train_step(model, optimizer, x: torch.Tensor) -> None:
    with torch.autocast(x.device.type, torch.bfloat16):
        logits = model(x[:, :-1])
    F.cross_entropy(logits.float().flatten(0, 1), x[:, 1:].flatten()).backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def step_worker(sizes: dict) -> None:
    from syllabus.model import Phi, PhiConfig
    from syllabus.train.dist import close_distributed, init_distributed, shard_model
    from syllabus.train.flops import flops_per_token, peak_flops

    env = init_distributed()
    if not torch.distributed.is_initialized():  # torchrun with one process: DDP and FSDP2 need a group (of one)
        torch.distributed.init_process_group("nccl" if env.device.type == "cuda" else "gloo")
    config = PhiConfig.preset(sizes["model"], **sizes["overrides"])
    cuda = env.device.type == "cuda"
    peak = peak_flops(torch.cuda.get_device_name(env.device)) if cuda else None
    results: dict = {"gpu": torch.cuda.get_device_name(env.device) if cuda else "cpu", "world_size": env.world_size,
                     "seq": sizes["seq"], "micro_batch": sizes["micro"]}
    x = torch.randint(0, config.vocab_size, (sizes["micro"], sizes["seq"] + 1), device=env.device)
    for wrapping in ("plain", "ddp", "fsdp2"):
        torch.manual_seed(0)
        model = Phi(config).to(env.device)
        n_params = model.num_params()
        if wrapping == "plain":
            results["attention_kernels"] = attention_kernels(model, x)
            if env.world_size > 1:
                continue  # N GPUs: the plain model is the same per GPU as the DDP one minus the all-reduce
        elif wrapping == "ddp":
            model = torch.nn.parallel.DistributedDataParallel(model, device_ids=[env.device] if cuda else None)
        else:
            model = shard_model(model)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=cuda)
        for _ in range(3):
            train_step(model, optimizer, x)
        if cuda:
            torch.cuda.synchronize()
        started = time.perf_counter()
        for _ in range(sizes["timed_steps"]):
            train_step(model, optimizer, x)
        if cuda:
            torch.cuda.synchronize()
        seconds = (time.perf_counter() - started) / sizes["timed_steps"]
        tokens_per_s = sizes["micro"] * sizes["seq"] / seconds  # per GPU
        row = {"step_ms": round(seconds * 1000, 1), "tokens_per_s_per_gpu": round(tokens_per_s)}
        if peak:
            row["mfu"] = round(tokens_per_s * flops_per_token(n_params, config.n_layer, config.n_embd,
                                                                sizes["seq"]) / peak, 4)
        if cuda:
            row["peak_memory_gib"] = round(torch.cuda.max_memory_allocated(env.device) / 2**30, 1)
            torch.cuda.reset_peak_memory_stats(env.device)
        results[wrapping] = row
        del model, optimizer
        if cuda:
            torch.cuda.empty_cache()
    if env.is_main:
        print("STEP_RESULTS " + json.dumps(results), flush=True)
    close_distributed()


def step_checks(sizes: dict, gpus: int) -> dict:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={max(gpus, 1)}",
               __file__, "--worker", json.dumps(sizes)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=BUDGET_S,
                            env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    lines = [line for line in result.stdout.splitlines() if line.startswith("STEP_RESULTS ")]
    if result.returncode != 0 or not lines:
        return {"error": (result.stderr.strip().splitlines() or ["no output"])[-1]}
    return json.loads(lines[-1].removeprefix("STEP_RESULTS "))


# ── 3: 200 steps of pretraining through the recipe runner ───────────────────────────────────


def packed_set(tmp: Path, sizes: dict) -> Path:
    from syllabus.ingest import IngestParams, ingest
    from syllabus.tokenizer import train_tokenizer
    from syllabus.train.pack import PackParams, pack

    ingest(IngestParams(sources=["stdlib"], max_files=sizes["files"], records_per_shard=500), tmp / "raw")
    train_tokenizer([tmp / "raw"], sizes["vocab"], tmp / "tok")
    pack([tmp / "raw"], tmp / "tok", tmp / "packed", PackParams(seq_len=sizes["seq"], val_fraction=0.02))
    return tmp / "packed"


def pretrain_check(tmp: Path, sizes: dict, gpus: int) -> tuple[dict, Path]:
    from syllabus.config import load_recipe
    from syllabus.recipe import run_recipe

    started = time.time()
    packed = packed_set(tmp, sizes)
    prepared = time.time() - started
    world = max(gpus, 1)
    overrides = {"model": sizes["model"], "model_overrides": sizes["overrides"], "max_steps": sizes["train_steps"],
                 "warmup_steps": sizes["train_steps"] // 10, "batch_size": sizes["micro"] * world * 2,
                 "micro_batch_size": sizes["micro"], "eval_every": sizes["train_steps"] // 2, "eval_batches": 2,
                 "checkpoint_every": sizes["train_steps"], "log_every": max(sizes["train_steps"] // 20, 1),
                 "compile": sizes["compile"], "distributed": "ddp",
                 "precision": "bf16" if gpus else "fp32"}
    recipe = tmp / "pretrain.yaml"
    recipe.write_text(json.dumps({"name": "gpu-check", "defaults": {"launch": {
        "engine": "torchrun", "nproc_per_node": world}}, "stages": [
        {"name": "base", "uses": "train.pretrain", "inputs": {"data": str(packed)},
         "params": {"preset": "phi-1-pretrain", "overrides": overrides, "hf_out": True}}]}))
    started = time.time()
    summary = run_recipe(load_recipe(recipe), tmp / "run")["base"]
    seconds = time.time() - started
    records = [json.loads(line) for line in (tmp / "run" / "base" / "metrics.jsonl").read_text().splitlines()]
    steady = [r for r in records if "tokens_per_s" in r and r["step"] > sizes["train_steps"] // 4]  # after compile
    result = {"steps": summary["steps"], "world_size": world, "batch": overrides["batch_size"], "seq": sizes["seq"],
              "data_prep_s": round(prepared, 1), "wall_s": round(seconds, 1),
              "first_loss": next(r["loss"] for r in records if "loss" in r), "last_loss": summary["loss"],
              "val_loss": summary["val_loss"],
              "tokens_per_s": round(statistics.median(r["tokens_per_s"] for r in steady)) if steady else None}
    if steady and "mfu" in steady[-1]:
        result["mfu"] = statistics.median(r["mfu"] for r in steady)
    return result, tmp / "run" / "base"


# ── 4: the Hugging Face export in transformers ──────────────────────────────────────────────


def hf_check(model_dir: Path, device: str) -> dict:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from syllabus.model.generate import generate_ids, load_model_dir

    hf_dir = model_dir / "hf"
    tokenizer = AutoTokenizer.from_pretrained(hf_dir)
    model = AutoModelForCausalLM.from_pretrained(hf_dir).to(device)
    prompt = "def fibonacci(n):\n"
    ids = tokenizer(prompt, return_tensors="pt").input_ids.to(device)
    started = time.perf_counter()
    out = model.generate(ids, max_new_tokens=128, do_sample=False)[0, ids.shape[1]:].tolist()
    seconds = time.perf_counter() - started
    ours, _ = load_model_dir(model_dir, device=device)
    mine = generate_ids(ours, [ids[0].tolist()], 128, eot_id=tokenizer.eos_token_id)[0]
    stopped = bool(out) and out[-1] == tokenizer.eos_token_id
    return {"eos_token": tokenizer.eos_token, "eos_id": tokenizer.eos_token_id, "new_tokens": len(out),
            "stopped_at_eos": stopped, "hf_tokens_per_s": round(len(out) / seconds, 1),
            "same_tokens_as_syllabus_generate": mine == (out[:-1] if stopped else out),
            "completion": tokenizer.decode(out, skip_special_tokens=True)[:200]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=None, help="where gpu_check.json goes (default: a temp dir)")
    parser.add_argument("--cpu-smoke", action="store_true", help="run every check tiny, on CPU")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        step_worker(json.loads(args.worker))
        return
    gpus = torch.cuda.device_count()
    if not gpus and not args.cpu_smoke:
        print(f"gpu_check: no CUDA GPU visible (torch {torch.__version__}); nothing measured")
        return
    sizes = scale(args.cpu_smoke)
    out = args.out or Path(tempfile.mkdtemp(prefix="gpu_check-"))
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    report: dict = {"torch": torch.__version__, "cuda": torch.version.cuda, "gpus": gpus, "sizes": sizes}

    def checkpoint(name: str, value) -> None:
        report[name] = value
        report["elapsed_s"] = round(time.time() - started, 1)
        (out / "gpu_check.json").write_text(json.dumps(report, indent=2, default=str))
        print(f"[{report['elapsed_s']:6.1f}s] {name}: {json.dumps(value, default=str)}", flush=True)

    checkpoint("step", step_checks(sizes, gpus))
    with tempfile.TemporaryDirectory(dir=out) as tmp:
        try:
            pretrain, model_dir = pretrain_check(Path(tmp), sizes, gpus)
            checkpoint("pretrain", pretrain)
            checkpoint("hf", hf_check(model_dir, "cuda" if gpus else "cpu"))
        except Exception as e:  # report what broke and keep the numbers measured so far
            checkpoint("error", f"{type(e).__name__}: {e}")
    print(f"gpu_check: done in {time.time() - started:.0f}s (budget {BUDGET_S}s); {out / 'gpu_check.json'}")


if __name__ == "__main__":
    main()
