"""Launch a train stage on its engine, wait for it, and turn what the ranks left into a result or one error.

    process   train() in the runner's own process
    torchrun  python -m torch.distributed.run --standalone --nproc_per_node N -m syllabus.train.launch JOB
    slurm     srun --nodes M --ntasks-per-node 1 python -m torch.distributed.run --nnodes M ... (c10d rendezvous
              on the allocation's first node), from inside the allocation (`sbatch` a script that runs `syllabus run`)
    ray       ray.train.torch.TorchTrainer, M x N workers on the Ray cluster the data stages use

The runner writes the job (config, data, out, init, hf_out) to OUT/.launch/job.json; every rank runs
`run_rank` on it. A rank that fails writes OUT/.launch/errors/rank-R.json (its error in one line) before it
exits; rank 0 writes OUT/.launch/summary.json when the last step is done and exported. So a stage returns
only when every rank finished, and a failed one raises the first rank's error. A killed launch resumes from
the last complete checkpoint when the runner starts it again (train runs with resume=True).
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from syllabus.config import Launch
from syllabus.data.files import atomic_write_json, read_json
from syllabus.errors import BadInput, RunFailed

LAUNCH_DIR = ".launch"


class TrainJob(BaseModel):
    """What every rank trains: a full TrainConfig as a dict, and the stage's paths."""

    config: dict[str, Any]
    data: str
    out: str
    init: str | None = None
    hf_out: str | None = None


def launch_training(launch: Launch, job: TrainJob, *, address: str | None = None, stage: str = "train") -> dict:
    """Train `job` on `launch.engine` and return rank 0's summary; a failed rank's error is raised."""
    if launch.engine == "process":
        return _train(job)
    root = Path(job.out) / LAUNCH_DIR
    for stale in [root / "summary.json", *(root / "errors").glob("rank-*.json")]:
        stale.unlink(missing_ok=True)
    job_file = root / "job.json"
    atomic_write_json(job_file, job.model_dump(mode="json"))
    if launch.engine == "ray":
        failure = _run_ray_train(launch, job_file, address)
    else:
        command = torchrun_command(launch, job_file) if launch.engine == "torchrun" else slurm_command(
            launch, job_file, job_id=_slurm_env("SLURM_JOB_ID"), first_node=_slurm_first_node())
        failure = _run_command(command)
    return _result(root, job, stage, failure)


# ── the commands ─────────────────────────────────────────────────────────────────────────────


def _rank_entry(job_file: Path) -> list[str]:
    return ["-m", "syllabus.train.launch", str(job_file)]


def torchrun_command(launch: Launch, job_file: Path) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
            str(launch.nproc_per_node), *_rank_entry(job_file)]


def slurm_command(launch: Launch, job_file: Path, *, job_id: str, first_node: str) -> list[str]:
    """One torchrun per node (srun starts them), meeting at a c10d rendezvous on the first node."""
    return ["srun", f"--nodes={launch.nnodes}", "--ntasks-per-node=1", "--kill-on-bad-exit=1", *launch.srun_args,
            sys.executable, "-m", "torch.distributed.run", f"--nnodes={launch.nnodes}",
            f"--nproc_per_node={launch.nproc_per_node}", "--rdzv_backend=c10d",
            f"--rdzv_endpoint={first_node}:{launch.port}", f"--rdzv_id=syllabus-{job_id}", *_rank_entry(job_file)]


def _slurm_env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise BadInput(f"launch.engine slurm: {name} is not set; run `syllabus run` inside a Slurm allocation "
                       "(sbatch or salloc)")
    return value


def _slurm_first_node() -> str:
    nodes = _slurm_env("SLURM_JOB_NODELIST")
    result = subprocess.run(["scontrol", "show", "hostnames", nodes], capture_output=True, text=True, check=True)
    return result.stdout.split()[0]


def _die_with_parent() -> None:
    """In the child: SIGTERM when the runner dies, so torchrun's ranks checkpoint and stop instead of running on."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _run_command(command: list[str]) -> str | None:
    """Run the launcher (stderr shown, SIGTERM/SIGINT to the runner passed on); its stderr's tail if it failed."""
    env = dict(os.environ)
    if sys.stderr.isatty():  # the ranks write into our pipe: let rank 0 still draw its progress bar
        env.update(TTY_INTERACTIVE="1", FORCE_COLOR="1")
    proc = subprocess.Popen(command, stderr=subprocess.PIPE, env=env, preexec_fn=_die_with_parent)
    tail: deque[str] = deque(maxlen=400)

    def copy_stderr() -> None:
        for raw in proc.stderr:
            line = raw.decode(errors="replace")
            tail.append(line)
            sys.stderr.write(line)
            sys.stderr.flush()

    reader = threading.Thread(target=copy_stderr, daemon=True)
    reader.start()
    stopped: list[int] = []

    def forward(signum, frame) -> None:
        stopped.append(signum)
        proc.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        returncode = proc.wait()
        reader.join()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if stopped:
        raise KeyboardInterrupt
    return None if returncode == 0 else "".join(tail) or f"exit code {returncode}"


def _run_ray_train(launch: Launch, job_file: Path, address: str | None) -> str | None:
    """Ray Train's workers run the ranks; the error Ray raised, if it failed."""
    import ray
    from ray.train import FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    from syllabus.scale import connect_ray

    connect_ray(address, launch.world_size)
    use_gpu = ray.cluster_resources().get("GPU", 0) > 0
    trainer = TorchTrainer(
        _ray_worker,
        train_loop_config={"job_file": str(job_file)},
        scaling_config=ScalingConfig(num_workers=launch.world_size, use_gpu=use_gpu),
        torch_config=TorchConfig(backend="nccl" if use_gpu else "gloo"),
        # our own checkpoints resume the run; Ray keeps only its bookkeeping here
        run_config=RunConfig(storage_path=str(job_file.parent / "ray"), name="train",
                             failure_config=FailureConfig(max_failures=0)),
    )
    try:
        trainer.fit()
    except Exception as e:  # Ray wraps a worker's error; the worker's own record names it better
        return f"{type(e).__name__}: {e}"
    return None


def _ray_worker(loop_config: dict) -> None:
    run_rank(Path(loop_config["job_file"]))


# ── the ranks ────────────────────────────────────────────────────────────────────────────────


def _train(job: TrainJob) -> dict:
    from syllabus.train.config import config_from_dict
    from syllabus.train.loop import train

    return train(config_from_dict(job.config), job.data, job.out, resume=True, init=job.init, hf_out=job.hf_out)


def run_rank(job_file: Path) -> dict:
    """One rank of a launched job: train, then leave the summary (rank 0) or this rank's error."""
    job = TrainJob.model_validate(read_json(job_file))
    rank = int(os.environ.get("RANK", "0"))
    try:
        summary = _train(job)
    except KeyboardInterrupt:
        raise  # asked to stop: checkpointed, not an error
    except BaseException as e:
        error = e.line() if isinstance(e, BadInput) else f"{type(e).__name__}: {e}"
        atomic_write_json(job_file.parent / "errors" / f"rank-{rank}.json",
                          {"rank": rank, "time": time.time(), "bad_input": isinstance(e, BadInput),
                           "error": error.strip().splitlines()[0] if error.strip() else type(e).__name__})
        raise
    if rank == 0:
        atomic_write_json(job_file.parent / "summary.json", summary)
    return summary


def _result(root: Path, job: TrainJob, stage: str, failure: str | None) -> dict:
    records = {r["rank"]: r for r in map(read_json, (root / "errors").glob("rank-*.json"))}
    if failure is not None or records:
        # the first rank to fail: torchrun's root cause (it also sees ranks killed by a signal), else the earliest record
        cause = _ROOT_CAUSE.search(failure or "")
        rank = int(cause.group(1)) if cause else min(records.values(), key=lambda r: r["time"])["rank"] \
            if records else None
        if rank in records:
            line = f"{stage}: rank {rank}: {records[rank]['error']}"
            raise BadInput(line) if records[rank]["bad_input"] else RunFailed(line)
        if cause:
            raise RunFailed(f"{stage}: rank {rank}: {cause.group(2).strip()}")
        lines = [line.strip() for line in (failure or "").splitlines() if line.strip()]
        raise RunFailed(f"{stage}: {lines[-1] if lines else 'the launcher failed without a message'}")
    summary_file = root / "summary.json"
    if not summary_file.exists():
        raise RunFailed(f"{stage}: training ended without rank 0's summary")
    summary = read_json(summary_file)
    if summary["steps"] < job.config["max_steps"]:
        raise RunFailed(f"{stage}: training stopped at step {summary['steps']} of {job.config['max_steps']}")
    return summary


# torchrun's failure report: the first rank that failed, and its error or the signal that killed it
_ROOT_CAUSE = re.compile(r"Root Cause.*?rank\s*:\s*(\d+).*?traceback\s*:\s*([^\n]+)", re.S)


def main(argv: list[str]) -> None:
    from rich.markup import escape

    from syllabus.console import console

    try:
        summary = run_rank(Path(argv[0]))
    except BadInput as e:
        console.print(f"[red]error:[/red] {escape(e.line())}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
    if int(os.environ.get("RANK", "0")) == 0:
        sys.stdout.write(json.dumps(summary) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
