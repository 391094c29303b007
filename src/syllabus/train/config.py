"""Training configs: the paper's hyper-parameters as named presets, overridable key by key from YAML.

    preset: phi-1-pretrain      # optional: start from a preset
    model: phi-1-small          # then override any key
    max_steps: 500

Batch sizes count sequences of the packed data's seq_len: `batch_size` is the global batch (all
processes together), `micro_batch_size` what one process runs per forward pass; gradient
accumulation makes up the rest (batch_size = micro_batch_size x accumulation x world size).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from syllabus.config import Params, load_yaml, validate
from syllabus.errors import BadInput
from syllabus.train.logs import missing_reporter


class TrainConfig(Params):
    model: str = "tiny"  # a PhiConfig preset, used when training from scratch (not with init)
    model_overrides: dict[str, Any] = {}  # PhiConfig fields, e.g. {n_layer: 2}
    dropout: float = Field(0.0, ge=0.0, lt=1.0)  # attention, residual and embedding dropout
    lr: float = Field(1e-3, gt=0)
    min_lr_ratio: float = Field(0.0, ge=0.0, le=1.0)  # linear decay ends at lr * min_lr_ratio
    warmup_steps: int = Field(0, ge=0)
    max_steps: int = Field(100, ge=1)
    # linear: warmup, then linear decay to max_steps (the paper's). wsd: warmup-stable-decay, the lr
    # holds after warmup and decays over the last decay_fraction of the run; with `budgets`, the run
    # also branches a cooldown off the stable trunk for each smaller budget and exports that model
    # too, so one run gives the checkpoints of several token budgets.
    schedule: Literal["linear", "wsd"] = "linear"
    decay_fraction: float = Field(0.2, gt=0.0, le=1.0)
    budgets: list[int] = Field(default_factory=list, description="wsd: step counts < max_steps to branch a cooldown to")
    weight_decay: float = Field(0.1, ge=0.0)
    betas: tuple[float, float] = (0.9, 0.95)
    eps: float = 1e-8
    grad_clip: float = Field(1.0, ge=0.0)  # 0 disables clipping
    batch_size: int = Field(8, ge=1)
    micro_batch_size: int = Field(8, ge=1)
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    compile: bool = False
    distributed: Literal["ddp", "fsdp"] = "ddp"  # used when launched with torchrun and world size > 1
    seed: int = 0
    log_every: int = Field(1, ge=1)
    eval_every: int = Field(50, ge=1)
    eval_batches: int = Field(4, ge=1)
    checkpoint_every: int = Field(100, ge=1)
    keep_checkpoints: int = Field(2, ge=1)
    # where metrics go besides metrics.jsonl; TensorBoard event files are always written (syllabus.train.logs)
    report_to: list[Literal["tensorboard", "wandb"]] = ["tensorboard"]

    @model_validator(mode="after")
    def _batch_divides(self) -> TrainConfig:
        if self.batch_size % self.micro_batch_size:
            raise ValueError(f"batch_size {self.batch_size} is not a multiple of micro_batch_size "
                             f"{self.micro_batch_size}")
        if self.warmup_steps > self.max_steps:
            raise ValueError(f"warmup_steps {self.warmup_steps} > max_steps {self.max_steps}")
        if self.budgets and self.schedule != "wsd":
            raise ValueError("budgets need schedule: wsd (a cooldown branches off a stable lr)")
        if sorted(set(self.budgets)) != self.budgets or any(not 0 < b < self.max_steps for b in self.budgets):
            raise ValueError(f"budgets {self.budgets} must be increasing step counts between 0 and max_steps")
        if any(self.cooldown_start(b) < self.warmup_steps for b in self.budgets):
            raise ValueError(f"budget {self.budgets[0]} steps would start its cooldown inside the warmup")
        return self

    @field_validator("report_to")
    @classmethod
    def _reporters_installed(cls, report_to: list[str]) -> list[str]:
        problem = missing_reporter(report_to)
        if problem:
            raise ValueError(problem)
        return report_to

    def cooldown_start(self, end: int) -> int:
        """wsd: the step at which the lr of a run ending at `end` starts to decay."""
        return end - max(1, round(self.decay_fraction * end))


# The paper trains in fp16 on A100s; bf16 needs no loss scaling and is what current GPUs prefer.
PRESETS: dict[str, dict[str, Any]] = {
    "phi-1-pretrain": dict(
        model="phi-1", dropout=0.1, lr=1e-3, warmup_steps=750, max_steps=36_000, weight_decay=0.1,
        batch_size=1024, micro_batch_size=8, precision="bf16", compile=True, distributed="fsdp",
        eval_every=1000, eval_batches=20, checkpoint_every=1000, log_every=10,
    ),
    "phi-1-finetune": dict(
        model="phi-1", dropout=0.1, lr=1e-4, warmup_steps=50, max_steps=6_000, weight_decay=0.01,
        batch_size=256, micro_batch_size=8, precision="bf16", compile=True, distributed="fsdp",
        eval_every=500, eval_batches=20, checkpoint_every=500, log_every=10,
    ),
    # laptop-CPU scale: minutes, same schedule shape
    "tiny-pretrain": dict(
        model="tiny", dropout=0.0, lr=3e-3, warmup_steps=20, max_steps=200, weight_decay=0.1,
        batch_size=16, micro_batch_size=8, precision="fp32", eval_every=50, eval_batches=2,
        checkpoint_every=50,
    ),
    "tiny-finetune": dict(
        model="tiny", dropout=0.0, lr=1e-3, warmup_steps=10, max_steps=100, weight_decay=0.01,
        batch_size=16, micro_batch_size=8, precision="fp32", eval_every=25, eval_batches=2,
        checkpoint_every=25,
    ),
}


def config_from_dict(data: dict[str, Any], file: str | Path | None = None) -> TrainConfig:
    """A config from a preset name plus overrides (`{"preset": ..., "lr": ...}`), or from keys alone."""
    data = dict(data)
    name = data.pop("preset", None)
    base = {}
    if name is not None:
        if name not in PRESETS:
            raise BadInput(f"preset: unknown training preset {name!r} (known: {', '.join(PRESETS)})", file=file)
        base = PRESETS[name]
    return validate(TrainConfig, {**base, **data}, file=file)


def load_config(path: str | Path) -> TrainConfig:
    data = load_yaml(path)
    if not isinstance(data, dict):
        raise BadInput("a training config must be a YAML mapping", file=path)
    return config_from_dict(data, file=path)
