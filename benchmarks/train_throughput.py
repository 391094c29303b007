"""Training and packing throughput on CPU, each against a named peer measured in the same run.

Training: our loop (`syllabus.train.loop.train`) on the `tiny` Phi vs a plain Hugging Face `Trainer`
on `PhiForCausalLM` with the same architecture, batch, optimizer settings and schedule.
Tokens/s are taken between step 3 and the last step, so startup, checkpointing and export are left out.

Packing: `syllabus train pack` (read shards, tokenize in-process or in spawned worker processes,
write uint16 token files) vs `tokenizers` `encode_batch` alone on the same texts already in memory.
On small inputs the workers' start-up (a fresh interpreter each) dominates; it amortizes with size.

    PYTHONPATH=src python benchmarks/train_throughput.py [--steps 30] [--files 400]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from syllabus.data.dataset import Dataset
from syllabus.ingest import IngestParams, ingest
from syllabus.model import Phi, PhiConfig
from syllabus.tokenizer import load_tokenizer, train_tokenizer
from syllabus.train.config import config_from_dict
from syllabus.train.data import PackedData
from syllabus.train.loop import train
from syllabus.train.pack import PackParams, pack

SEQ_LEN = 256
MICRO_BATCH = 8
WARM_STEPS = 3


def pack_throughput(tmp: Path, files: int) -> tuple[dict[int, float], float]:
    """Tokens/s of pack with 1 (in-process) and 2 worker processes, and of encode_batch alone."""
    data = ingest(IngestParams(sources=["stdlib"], max_files=files, records_per_shard=max(files // 4, 1)), tmp / "raw")
    train_tokenizer([data.path], 4096, tmp / "tok")
    ours = {}
    for workers in (1, 2):
        started = time.perf_counter()
        meta = pack([data.path], tmp / "tok", tmp / f"packed-{workers}", PackParams(seq_len=SEQ_LEN, val_fraction=0.02),
                    workers=workers)
        ours[workers] = (meta["train_tokens"] + meta["val"]["tokens"]) / (time.perf_counter() - started)
    (tmp / "packed-1").rename(tmp / "packed")

    texts = [record["text"] for record in Dataset(data.path).records()]
    tokenizer = load_tokenizer(tmp / "tok")
    started = time.perf_counter()
    tokens = sum(len(ids) for ids in tokenizer.encode_batch(texts))
    peer = tokens / (time.perf_counter() - started)
    return ours, peer


def our_training(tmp: Path, steps: int) -> float:
    config = config_from_dict({"preset": "tiny-pretrain", "max_steps": steps, "warmup_steps": 2,
                               "batch_size": MICRO_BATCH, "micro_batch_size": MICRO_BATCH,
                               "eval_every": 10 * steps, "checkpoint_every": 10 * steps})
    train(config, tmp / "packed", tmp / "ours")
    records = [json.loads(line) for line in (tmp / "ours" / "metrics.jsonl").read_text().splitlines()]
    first, last = (next(r for r in records if r["step"] == s and "loss" in r) for s in (WARM_STEPS, steps))
    return (last["tokens"] - first["tokens"]) / (last["time"] - first["time"])


def hf_training(tmp: Path, steps: int) -> float:
    from transformers import Trainer, TrainerCallback, TrainingArguments

    packed = PackedData(tmp / "packed")
    config = config_from_dict({"preset": "tiny-pretrain"})
    model = Phi(PhiConfig.preset("tiny", vocab_size=64 * -(-packed.vocab_size // 64))).to_hf()

    class Sequences(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return len(packed.sources[0])

        def __getitem__(self, i: int) -> dict:
            ids = torch.from_numpy(packed.sources[0].window(i)[0].astype("int64"))
            return {"input_ids": ids, "labels": ids}  # SEQ_LEN + 1 tokens -> SEQ_LEN predictions, like ours

    class StepTimes(TrainerCallback):
        times: dict[int, float] = {}

        def on_step_end(self, args, state, control, **kwargs):
            self.times[state.global_step] = time.perf_counter()

    args = TrainingArguments(
        output_dir=str(tmp / "hf"), max_steps=steps, per_device_train_batch_size=MICRO_BATCH,
        learning_rate=config.lr, warmup_steps=2, lr_scheduler_type="linear", weight_decay=config.weight_decay,
        adam_beta1=config.betas[0], adam_beta2=config.betas[1], max_grad_norm=config.grad_clip,
        use_cpu=True, report_to="none", save_strategy="no", eval_strategy="no", logging_strategy="no",
        disable_tqdm=True, dataloader_num_workers=0,
    )
    timer = StepTimes()
    Trainer(model=model, args=args, train_dataset=Sequences(), callbacks=[timer]).train()
    return (steps - WARM_STEPS) * MICRO_BATCH * SEQ_LEN / (timer.times[steps] - timer.times[WARM_STEPS])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--files", type=int, default=400)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        pack_ours, pack_peer = pack_throughput(tmp, args.files)
        train_ours = our_training(tmp, args.steps)
        train_peer = hf_training(tmp, args.steps)
    print(f"torch threads: {torch.get_num_threads()}")
    for workers, tokens_per_s in pack_ours.items():
        print(f"packing  syllabus train pack, {workers} worker(s): {tokens_per_s:12,.0f} tok/s | tokenizers "
              f"encode_batch alone: {pack_peer:12,.0f} tok/s | ratio {tokens_per_s / pack_peer:.2f}x")
    print(f"training syllabus loop:       {train_ours:12,.0f} tok/s | HF Trainer + PhiForCausalLM:   "
          f"{train_peer:12,.0f} tok/s | ratio {train_ours / train_peer:.2f}x")


if __name__ == "__main__":
    main()
