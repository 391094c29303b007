"""Where a training run's numbers go: `metrics.jsonl` (what syllabus's report reads), TensorBoard event files
in `tensorboard/` always, and Weights & Biases when the config asks (`report_to: [tensorboard, wandb]`).

Only rank 0 writes. On resume every log drops what came after the checkpoint it resumes from, so each
shows one clean curve: metrics.jsonl is truncated, TensorBoard purges later events, W&B resumes its run.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
from typing import Any

from syllabus.data.files import atomic_write_text
from syllabus.summaries import TRAIN_LOG

# metrics.jsonl key -> TensorBoard / W&B tag
SCALARS = {
    "loss": "train/loss",
    "val_loss": "val/loss",
    "lr": "train/lr",
    "grad_norm": "train/grad_norm",
    "tokens_per_s": "perf/tokens_per_s",
    "mfu": "perf/mfu",
}
REPORTERS = ("tensorboard", "wandb")


def missing_reporter(report_to: list[str]) -> str | None:
    """Why report_to cannot be honoured here, in one line, or None."""
    if "wandb" in report_to and importlib.util.find_spec("wandb") is None:
        return "wandb is not installed: `pip install wandb` (and `wandb login`), or drop it from report_to"
    return None


class TrainingLog:
    def __init__(self, out: Path, report_to: list[str], *, enabled: bool, resume_step: int,
                 run_config: dict[str, Any]):
        self.enabled = enabled
        self.metrics_path = out / TRAIN_LOG
        self.tensorboard = self.wandb = None
        if not enabled:
            return
        self._truncate_metrics(resume_step)
        from torch.utils.tensorboard import SummaryWriter

        self.tensorboard = SummaryWriter(str(out / "tensorboard"), purge_step=resume_step or None)
        if "wandb" in report_to:
            self.wandb = _start_wandb(out, run_config)

    def _truncate_metrics(self, step: int) -> None:
        if not self.metrics_path.exists():
            return
        lines = [line for line in self.metrics_path.read_text().splitlines()
                 if line.strip() and json.loads(line)["step"] <= step]
        atomic_write_text(self.metrics_path, "".join(line + "\n" for line in lines))

    def write(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        with open(self.metrics_path, "a") as f:
            f.write(json.dumps(record) + "\n")
        scalars = {tag: record[key] for key, tag in SCALARS.items() if key in record}
        for tag, value in scalars.items():
            self.tensorboard.add_scalar(tag, value, record["step"])
        if self.wandb is not None:
            self.wandb.log(scalars, step=record["step"])

    def close(self) -> None:
        if self.tensorboard is not None:
            self.tensorboard.close()
        if self.wandb is not None:
            self.wandb.finish()


def _start_wandb(out: Path, run_config: dict[str, Any]):
    """A W&B run for `out`, the same one again on resume (its id is kept in out/wandb-run-id)."""
    import wandb

    id_file = out / "wandb-run-id"
    if not id_file.exists():
        atomic_write_text(id_file, wandb.util.generate_id())
    return wandb.init(project=os.environ.get("WANDB_PROJECT", "syllabus"), name=out.name, dir=str(out),
                      id=id_file.read_text().strip(), resume="allow", config=run_config)
