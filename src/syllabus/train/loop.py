"""The training loop: pretraining and finetuning of the phi model on a packed dir.

One step consumes one global batch of `batch_size` sequences from the packed data's seeded stream:
rank r of W takes its contiguous share and splits it into micro-batches (gradient accumulation).
The loss is the mean over every target token of the global batch that the loss mask keeps, so
one process with accumulation and W processes compute the same step.

Writes into `out`: `metrics.jsonl` (one line per logged step, `val_loss` lines every eval_every
steps), `checkpoints/` (see `syllabus.train.checkpoint`), `train_config.json`, and at the end the
exported *model dir* (`config.json`, `model.safetensors`, `tokenizer.json`), so `out` itself is
what eval, serve and a finetune's `init` load.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import shutil
import signal
import threading
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from pydantic import Field

from syllabus.config import Params, StageContext
from syllabus.console import console, progress_bar
from syllabus.data.files import atomic_write_json, read_json, sha256_file
from syllabus.errors import BadInput
from syllabus.summaries import FinetuneSummary, TrainSummary
from syllabus.train.checkpoint import capture_rng, latest_checkpoint, load_checkpoint, restore_rng, save_checkpoint
from syllabus.train.config import TrainConfig, config_from_dict
from syllabus.train.data import PackedData
from syllabus.train.flops import flops_per_token, peak_flops
from syllabus.train.launch import TrainJob, launch_training
from syllabus.train.logs import TrainingLog
from syllabus.train.dist import (
    DistEnv,
    all_gather_objects,
    all_reduce_sum,
    close_distributed,
    full_state,
    gradient_sync,
    init_distributed,
    load_full_state,
    wrap_model,
)

AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def lr_lambda(config: TrainConfig, end: int | None = None):
    """The lr factor of each step of a run that ends at `end` (default max_steps): linear warmup to lr,
    then linear decay to lr * min_lr_ratio at `end` (the paper's schedule), or with schedule wsd the
    lr held until `config.cooldown_start(end)` and decayed linearly from there."""
    end = config.max_steps if end is None else end
    decay_from = config.cooldown_start(end) if config.schedule == "wsd" else config.warmup_steps

    def factor(step: int) -> float:
        if step < config.warmup_steps:
            return (step + 1) / config.warmup_steps
        progress = max(step - decay_from, 0) / max(end - decay_from, 1)
        return 1.0 - (1.0 - config.min_lr_ratio) * min(progress, 1.0)

    return factor


def make_optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only (not biases, LayerNorms)."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": config.weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=config.lr, betas=config.betas, eps=config.eps)


def build_model(config: TrainConfig, data: PackedData, init: Path | None, saved_config: dict | None):
    """The model to train: from a checkpoint's config, from `init` (a model dir), or a fresh preset."""
    from syllabus.model import Phi, PhiConfig
    from syllabus.tokenizer import load_tokenizer

    pretrained = None
    if saved_config is not None:
        model_config = PhiConfig.from_dict(saved_config)
    elif init is not None:
        init_tokenizer = Path(init) / "tokenizer.json"
        if init_tokenizer.exists() and sha256_file(init_tokenizer) != data.meta["tokenizer_sha256"]:
            raise BadInput("the model's tokenizer.json differs from the tokenizer the data was packed with",
                           file=init_tokenizer)
        pretrained = Phi.from_pretrained(init)
        model_config = pretrained.config
    else:
        # the preset's vocab is the paper's tokenizer's; a fresh model takes the data's (padded to 64)
        model_config = PhiConfig.from_dict({**PhiConfig.preset(config.model).to_dict(),
                                            "vocab_size": 64 * math.ceil(data.vocab_size / 64),
                                            **config.model_overrides})
    model_config = with_dropout(model_config, config.dropout)
    load_tokenizer(data.tokenizer_file).check_fits(model_config.vocab_size, model=init or data.path)
    if data.seq_len > model_config.block_size:
        raise BadInput(f"packed seq_len {data.seq_len} exceeds the model's context {model_config.block_size}",
                       file=data.path)
    if pretrained is not None:
        return Phi.from_state_dict(model_config, pretrained.state_dict()), model_config
    return Phi(model_config), model_config


def with_dropout(model_config, p: float):
    return dataclasses.replace(model_config, embd_pdrop=p, attn_pdrop=p, resid_pdrop=p)


class _StopFlag:
    """Set by SIGTERM/SIGINT; the loop checkpoints at the end of the current step and exits."""

    def __init__(self):
        self.set = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _StopFlag:
        if threading.current_thread() is not threading.main_thread():
            return self  # Ray Train runs the loop in a thread; Ray, not a signal, stops it
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        self.set = True

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def masked_loss_sum(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    losses = F.cross_entropy(logits.float().flatten(0, 1), targets.flatten(), reduction="none")
    return losses.sum() if mask is None else (losses * mask.flatten()).sum()


def _target_count(tokens: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    return torch.tensor(float(tokens[:, 1:].numel() if mask is None else mask[:, 1:].sum()))


class Trainer:
    def __init__(self, config: TrainConfig, data: PackedData, out: Path, env: DistEnv, *,
                 resume: bool = False, init: Path | None = None):
        self.config, self.data, self.out, self.env, self.init = config, data, out, env, init
        per_step = config.micro_batch_size * env.world_size
        if config.batch_size % per_step:
            raise BadInput(f"batch_size {config.batch_size} is not a multiple of micro_batch_size x world size "
                           f"= {per_step}")
        self.accumulation = config.batch_size // per_step
        self.checkpoint_dir = out / "checkpoints"
        latest = latest_checkpoint(self.checkpoint_dir)
        if latest is not None and not resume:
            raise BadInput("has checkpoints of an earlier run: pass --resume to continue it, or use a new --out",
                           file=out)
        state = load_checkpoint(latest) if latest is not None else None

        torch.manual_seed(config.seed)  # same initial weights on every rank
        model, self.model_config = build_model(config, data, init, state and state["model_config"])
        torch.manual_seed(config.seed + env.rank)  # different dropout masks per rank
        self.model = wrap_model(model.to(env.device), config.distributed, env)
        self.optimizer = make_optimizer(self.model, config)
        self.lr_factor = lr_lambda(config)  # a cooldown branch swaps in its own
        self.scaler = torch.amp.GradScaler(env.device.type, enabled=config.precision == "fp16")
        self.step = 0
        if state is not None:
            load_full_state(self.model, self.optimizer, state["model"], state["optimizer"])
            self.scaler.load_state_dict(state["scaler"])
            self.step = state["step"]
            rng = state["rng"]
            if len(rng) == env.world_size:
                restore_rng(rng[env.rank])
            else:
                console.print(f"[yellow]resuming with {env.world_size} processes from a checkpoint of "
                              f"{len(rng)}: data order is exact, dropout masks are not[/yellow]")
            if env.is_main:
                console.print(f"resuming from {latest} (step {self.step})")
        if config.compile:
            self.model = torch.compile(self.model)
        self.autocast = (torch.autocast(env.device.type, dtype=AUTOCAST_DTYPES[config.precision])
                         if config.precision in AUTOCAST_DTYPES else nullcontext())
        n_params = sum(p.numel() for p in model.parameters())
        self.flops_per_token = flops_per_token(n_params, self.model_config.n_layer, self.model_config.n_embd,
                                               data.seq_len)
        # MFU is logged on GPUs only: the bf16 peak of every GPU in the run
        peak = peak_flops(torch.cuda.get_device_name(env.device)) if env.device.type == "cuda" else None
        self.peak_flops = peak and peak * env.world_size
        self.log = TrainingLog(out, config.report_to, enabled=env.is_main, resume_step=self.step,
                               run_config=config.model_dump(mode="json"))
        if env.is_main:
            atomic_write_json(out / "train_config.json", {"data": str(data.path), "init": init and str(init),
                                                          "config": config.model_dump(mode="json")})

    def train_step(self) -> tuple[float, float, float]:
        """One optimizer step over this rank's share of the global batch; returns (loss, grad norm, lr)."""
        config, env = self.config, self.env
        share = config.micro_batch_size * self.accumulation
        start = self.step * config.batch_size + env.rank * share
        tokens, mask = self.data.train_batch(config.seed, start, share)
        # a batch whose targets are all masked (prompt-only windows of packed exercises) adds no gradient
        count = max(all_reduce_sum(_target_count(tokens, mask)).item(), 1.0)
        total = torch.zeros((), device=env.device)
        for i in range(self.accumulation):
            rows = slice(i * config.micro_batch_size, (i + 1) * config.micro_batch_size)
            x = tokens[rows, :-1].to(env.device, non_blocking=True)
            y = tokens[rows, 1:].to(env.device, non_blocking=True)
            m = None if mask is None else mask[rows, 1:].to(env.device, non_blocking=True)
            with gradient_sync(self.model, i == self.accumulation - 1):
                with self.autocast:
                    loss_sum = masked_loss_sum(self.model(x), y, m)
                # DDP and FSDP average gradients over ranks; scale so the result is the global mean
                self.scaler.scale(loss_sum * (env.world_size / count)).backward()
            total += loss_sum.detach()
        grad_norm = float("nan")
        if config.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), config.grad_clip)
            grad_norm = float(norm.full_tensor() if hasattr(norm, "full_tensor") else norm)
        lr = config.lr * self.lr_factor(self.step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        return all_reduce_sum(total.cpu()).item() / count, grad_norm, lr

    @torch.no_grad()
    def validation_loss(self) -> float:
        config, env = self.config, self.env
        self.model.eval()
        total = torch.zeros(2)
        # the same eval_batches x micro_batch_size sequences whatever the world size, batches dealt round-robin
        for b in range(env.rank, config.eval_batches, env.world_size):
            tokens, mask = self.data.val_batch(b * config.micro_batch_size, config.micro_batch_size)
            m = None if mask is None else mask[:, 1:].to(env.device)
            with self.autocast:
                logits = self.model(tokens[:, :-1].to(env.device))
            total += torch.stack([masked_loss_sum(logits, tokens[:, 1:].to(env.device), m).cpu(),
                                  _target_count(tokens, mask)])
        self.model.train()
        loss_sum, count = all_reduce_sum(total).tolist()
        return loss_sum / count if count else float("nan")  # a masked val slice may hold no target

    def save(self) -> None:
        model_state, optimizer_state = full_state(self.model, self.optimizer)
        rng = all_gather_objects(capture_rng())
        if self.env.is_main:
            save_checkpoint(self.checkpoint_dir, self.step, {
                "step": self.step, "samples": self.step * self.config.batch_size,
                "model": model_state, "optimizer": optimizer_state,
                "scaler": self.scaler.state_dict(), "rng": rng,
                "model_config": self.model_config.to_dict(),
                "config": self.config.model_dump(mode="json"),
            }, keep=self.config.keep_checkpoints)

    def export(self, hf_out: Path | None = None, summary: dict[str, Any] | None = None,
               model_dir: Path | None = None) -> None:
        """Write the trained weights as a model dir into `model_dir` (default `out`), and a Hugging
        Face dir if asked."""
        from syllabus.model import Phi
        from syllabus.tokenizer import load_tokenizer
        from syllabus.train.export import write_hf_dir

        model_dir = model_dir or self.out
        model_state, _ = full_state(self.model, self.optimizer)
        if not self.env.is_main:
            return
        model = Phi(with_dropout(self.model_config, 0.0))
        model.load_state_dict(model_state)
        model.save_pretrained(model_dir)
        shutil.copyfile(self.data.tokenizer_file, model_dir / "tokenizer.json")
        if hf_out is not None:
            write_hf_dir(model, load_tokenizer(self.data.tokenizer_file), hf_out, self.card(model, summary or {}))

    def card(self, model, summary: dict[str, Any]) -> dict[str, Any]:
        """What the model card says about this run."""
        config, meta = self.config, self.data.meta
        sources = ", ".join(f"{s['name']} ({s['tokens']:,} tokens, weight {s.get('weight', 1.0)})"
                            for s in meta["sources"])
        return {"name": self.out.name, "architecture": f"phi, {self.model_config.n_layer} layers, "
                f"d {self.model_config.n_embd}, {self.model_config.n_head} heads, context {self.model_config.block_size}",
                "parameters": model.num_params(), "init": self.init and str(self.init),
                "data": f"{self.data.path} (sequences of {self.data.seq_len}): {sources}",
                "steps": self.step, "tokens": self.step * config.batch_size * self.data.seq_len,
                "loss": summary.get("loss"), "val_loss": summary.get("val_loss"),
                "hyperparameters": f"lr {config.lr}, warmup {config.warmup_steps}, batch {config.batch_size}, "
                f"weight decay {config.weight_decay}, dropout {config.dropout}, {config.precision}"}

    def budget_dir(self, steps: int) -> Path:
        return self.out / "budgets" / f"steps-{steps:08d}"

    def cooldown_branch(self, end: int, stop: _StopFlag) -> None:
        """Decay the lr from the current (stable) step to `end` on the trunk's own data stream, export
        that model to budget_dir(end), then put the trunk back exactly as it was."""
        trunk = {"step": self.step, "lr_factor": self.lr_factor, "rng": capture_rng(),
                 "model": copy.deepcopy(self.model.state_dict()), "optimizer": copy.deepcopy(self.optimizer.state_dict()),
                 "scaler": copy.deepcopy(self.scaler.state_dict())}
        out = self.budget_dir(end)
        out.mkdir(parents=True, exist_ok=True)
        self.lr_factor = lr_lambda(self.config, end)
        losses = []
        while self.step < end:
            losses.append(self.train_step()[0])
            if all_reduce_sum(torch.tensor(float(stop.set))).item() > 0:
                raise KeyboardInterrupt  # the trunk's checkpoint at the branch point redoes this branch
        val_loss = self.validation_loss()
        self.export(model_dir=out)
        tokens = end * self.config.batch_size * self.data.seq_len
        if self.env.is_main:
            atomic_write_json(out / "budget.json", {"steps": end, "tokens": tokens, "loss": losses[-1],
                                                    "val_loss": val_loss})
        self.model.load_state_dict(trunk["model"])
        self.optimizer.load_state_dict(trunk["optimizer"])
        self.scaler.load_state_dict(trunk["scaler"])
        self.step, self.lr_factor = trunk["step"], trunk["lr_factor"]
        restore_rng(trunk["rng"])

    def budgets(self) -> list[dict[str, Any]]:
        """Every exported budget, smallest first; the full run's model dir is `out` itself."""
        found = [read_json(self.budget_dir(steps) / "budget.json") | {"model": str(self.budget_dir(steps))}
                 for steps in self.config.budgets if (self.budget_dir(steps) / "budget.json").exists()]
        return found

    def run(self) -> dict[str, Any]:
        config, env = self.config, self.env
        self.model.train()
        tokens_per_step = config.batch_size * self.data.seq_len
        loss = val_loss = float("nan")
        started, done_at_start = time.time(), self.step
        branch_at = {config.cooldown_start(end): end for end in config.budgets}
        with _StopFlag() as stop, progress_bar() if env.is_main else nullcontext() as bar:
            task = bar.add_task("train", total=config.max_steps, completed=self.step, status="") if bar else None
            interval_start, interval_steps = time.time(), 0
            while self.step < config.max_steps:
                end = branch_at.get(self.step)
                if end is not None and not (self.budget_dir(end) / "budget.json").exists():
                    self.save()  # the branch point, so that a kill inside the branch redoes only the branch
                    self.cooldown_branch(end, stop)
                    interval_start, interval_steps = time.time(), 0
                loss, grad_norm, lr = self.train_step()
                interval_steps += 1
                if self.step % config.log_every == 0 or self.step == config.max_steps:
                    elapsed = time.time() - interval_start
                    tokens_per_s = interval_steps * tokens_per_step / max(elapsed, 1e-9)
                    record = {"step": self.step, "loss": loss, "lr": lr, "grad_norm": grad_norm,
                              "tokens": self.step * tokens_per_step, "tokens_per_s": round(tokens_per_s, 1),
                              "time": round(time.time() - started, 3)}
                    if self.peak_flops:
                        record["mfu"] = round(tokens_per_s * self.flops_per_token / self.peak_flops, 4)
                    self.log.write(record)
                    interval_start, interval_steps = time.time(), 0
                    if bar:
                        bar.update(task, completed=self.step,
                                   status=f"loss {loss:.4f} | {tokens_per_s:,.0f} tok/s | lr {lr:.2e}")
                if self.step % config.eval_every == 0 or self.step == config.max_steps:
                    val_loss = self.validation_loss()
                    self.log.write({"step": self.step, "val_loss": val_loss})
                stopping = all_reduce_sum(torch.tensor(float(stop.set))).item() > 0
                if stopping or self.step % config.checkpoint_every == 0 or self.step == config.max_steps:
                    self.save()
                if stopping:
                    if env.is_main:
                        console.print(f"stopped at step {self.step}; checkpoint saved, resume with --resume")
                    raise KeyboardInterrupt
        seconds = time.time() - started
        tokens = self.step * tokens_per_step
        final = {"steps": self.step, "tokens": tokens, "loss": loss, "val_loss": val_loss, "model": str(self.out)}
        return {"steps": self.step, "loss": loss, "val_loss": val_loss, "tokens": tokens,
                "epochs": round(self.step * config.batch_size / max(self.data.epoch_size, 1), 3),
                "seconds": round(seconds, 2),
                "tokens_per_s": round((self.step - done_at_start) * tokens_per_step / max(seconds, 1e-9), 1),
                "budgets": [*self.budgets(), final]}


def train(config: TrainConfig, data: str | Path, out: str | Path, *, resume: bool = False,
          init: str | Path | None = None, hf_out: str | Path | None = None) -> dict[str, Any]:
    """Train on a packed dir into `out` (single process, or one rank under torchrun)."""
    owns_group = not torch.distributed.is_initialized()  # Ray Train made it, and closes it
    env = init_distributed()
    try:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        trainer = Trainer(config, PackedData(data), out, env, resume=resume, init=init and Path(init))
        try:
            summary = trainer.run()
        finally:
            trainer.log.close()
        trainer.export(hf_out and Path(hf_out), summary)
        if env.is_main:  # what eval.scaling scores: every budget's model dir, the final one last
            atomic_write_json(out / "budgets.json", summary["budgets"])
        return summary
    finally:
        if owns_group:
            close_distributed()


HF_DIR = "hf"  # a train stage's Hugging Face dir, under its output dir


class TrainStageParams(Params):
    """Recipe params of `train.pretrain` / `train.finetune`: a preset plus any TrainConfig overrides."""

    preset: str
    overrides: dict[str, Any] = Field(default_factory=dict)
    hf_out: bool = False  # also write a Hugging Face dir (transformers, vLLM) into OUT/hf


def _train_stage(params: TrainStageParams, inputs: dict[str, Path | list[Path]], out: Path,
                 ctx: StageContext) -> dict:
    if "data" not in inputs:
        raise BadInput(f"{ctx.stage}: needs input 'data' (a packed dir from train.pack)")
    # the recipe's seed (initialisation and data order) unless the stage sets its own
    config = config_from_dict({"preset": params.preset, "seed": ctx.seed, **params.overrides})
    # a killed stage resumes from its checkpoints when the runner starts it again; a changed one starts over
    previous = out / "train_config.json"
    if previous.exists() and read_json(previous)["config"] != config.model_dump(mode="json"):
        shutil.rmtree(out / "checkpoints", ignore_errors=True)
        shutil.rmtree(out / "budgets", ignore_errors=True)  # cooldown branches of the old config
    init = inputs.get("init")
    job = TrainJob(config=config.model_dump(mode="json"), data=str(inputs["data"]), out=str(out),
                   init=init and str(init), hf_out=str(out / HF_DIR) if params.hf_out else None)
    return launch_training(ctx.launch, job, address=ctx.address, stage=ctx.stage)


def pretrain_stage(params: TrainStageParams, inputs: dict[str, Path | list[Path]], out: Path,
                   ctx: StageContext) -> TrainSummary:
    """Recipe stage `train.pretrain`: inputs `data` (packed dir)."""
    return TrainSummary(**_train_stage(params, inputs, out, ctx))


def finetune_stage(params: TrainStageParams, inputs: dict[str, Path | list[Path]], out: Path,
                   ctx: StageContext) -> FinetuneSummary:
    """Recipe stage `train.finetune`: inputs `data` (packed exercises) and `init` (the pretrained model dir)."""
    if "init" not in inputs:
        raise BadInput(f"{ctx.stage}: train.finetune needs input 'init' (the pretrained model dir)")
    return FinetuneSummary(**_train_stage(params, inputs, out, ctx))
