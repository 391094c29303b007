import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from syllabus.cli import app
from syllabus.config import Launch, load_recipe
from syllabus.data.dataset import record_id, write_dataset
from syllabus.errors import BadInput
from syllabus.recipe import run_recipe
from syllabus.tokenizer import load_tokenizer, train_tokenizer
from syllabus.train.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from syllabus.train.config import config_from_dict
from syllabus.train.data import PackedData
from syllabus.train.launch import TrainJob, launch_training, slurm_command
from syllabus.train.loop import lr_lambda, train
from syllabus.train.pack import PackParams, pack

REPO = Path(__file__).resolve().parents[1]
SEQ_LEN = 32
# one thread: on a shared 2-core machine, torch's thread pool spinning against other processes is 10x slower
ONE_THREAD = {"OMP_NUM_THREADS": "1"}
TINY_MODEL = {"n_layer": 2, "n_embd": 64, "n_head": 2, "n_inner": 256}


pytestmark = pytest.mark.usefixtures("one_thread")


def _code(i: int) -> str:
    return f"def add_{i}(x):\n    \"\"\"Add {i} to x.\"\"\"\n    return x + {i}\n"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A code dataset, an exercise dataset (prompt/completion), a tokenizer and a packed dir."""
    root = tmp_path_factory.mktemp("corpus")
    code = [_code(i) for i in range(300)]
    write_dataset(root / "code", ({"id": record_id(t), "text": t} for t in code), stage="test")
    exercises = [{"id": f"ex{i}", "prompt": f"def double_{i}(x):\n    \"\"\"Return 2x.\"\"\"\n",
                  "completion": "    return 2 * x\n"} for i in range(120)]
    write_dataset(root / "exercises", exercises, stage="test")
    train_tokenizer([root / "code"], 320, root / "tok")
    pack([root / "code"], root / "tok", root / "packed", PackParams(seq_len=SEQ_LEN, val_fraction=0.1))
    return root


def test_pack_joins_documents_with_eot_and_holds_out_validation(corpus):
    meta = json.loads((corpus / "packed" / "meta.json").read_text())
    tok = load_tokenizer(corpus / "tok")
    assert meta["dtype"] == "uint16" and meta["vocab_size"] == tok.vocab_size and meta["seq_len"] == SEQ_LEN
    train_ids = np.fromfile(corpus / "packed" / "code.train.bin", dtype=np.uint16)
    val_ids = np.fromfile(corpus / "packed" / "val.bin", dtype=np.uint16)
    assert len(train_ids) == meta["sources"][0]["tokens"] and len(val_ids) == meta["val"]["tokens"]
    # every document is followed by exactly one <|endoftext|>; train and validation docs are disjoint
    def documents(ids):
        return [tok.decode(d[:-1].tolist()) for d in np.split(ids, np.where(ids == tok.eot_id)[0] + 1) if len(d)]

    train_docs, val_docs = documents(train_ids), documents(val_ids)
    assert sorted(train_docs + val_docs) == sorted(_code(i) for i in range(300))
    assert 10 < len(val_docs) < 60 and meta["val"]["docs"] == len(val_docs)
    data = PackedData(corpus / "packed")
    tokens, mask = data.train_batch(seed=0, start=0, count=4)
    assert tokens.shape == (4, SEQ_LEN + 1) and mask is None
    assert torch.equal(tokens, data.train_batch(seed=0, start=0, count=4)[0])


def test_exercises_are_masked_to_the_completion_unless_include_prompt(corpus, tmp_path):
    tok = load_tokenizer(corpus / "tok")
    meta = pack([corpus / "exercises"], corpus / "tok", tmp_path / "ft", PackParams(seq_len=SEQ_LEN, val_fraction=0.1))
    assert meta["sources"][0]["masked"] and meta["val"]["masked"]
    ids = np.fromfile(tmp_path / "ft" / "exercises.train.bin", dtype=np.uint16)
    mask = np.fromfile(tmp_path / "ft" / "exercises.train.mask", dtype=np.uint8)
    assert len(ids) == len(mask)
    first_doc_end = int(np.where(ids == tok.eot_id)[0][0]) + 1
    trained = ids[:first_doc_end][mask[:first_doc_end] == 1]
    assert trained[-1] == tok.eot_id and tok.decode(trained[:-1].tolist()) == "    return 2 * x\n"
    _, loss_mask = PackedData(tmp_path / "ft").train_batch(seed=0, start=0, count=2)
    assert loss_mask is not None and 0 < loss_mask.float().mean() < 1

    meta = pack([corpus / "exercises"], corpus / "tok", tmp_path / "ft-all",
                PackParams(seq_len=SEQ_LEN, val_fraction=0.1, include_prompt=True))
    assert not meta["sources"][0]["masked"] and not (tmp_path / "ft-all" / "exercises.train.mask").exists()


def test_mix_weights_repeat_or_subsample_sources(corpus, tmp_path):
    pack([corpus / "code", corpus / "exercises"], corpus / "tok", tmp_path / "mix",
         PackParams(seq_len=SEQ_LEN, val_fraction=0.1, include_prompt=True, weights={"code": 0.5, "exercises": 2.0}))
    data = PackedData(tmp_path / "mix")
    n_code, n_ex = (len(s) for s in data.sources)
    assert data.epoch_size == round(0.5 * n_code) + 2 * n_ex
    ids = np.array(data.sample_ids(seed=3, start=0, count=data.epoch_size))
    counts = np.bincount(ids, minlength=n_code + n_ex)
    assert set(counts[:n_code]) == {0, 1} and counts[:n_code].sum() == round(0.5 * n_code)
    assert set(counts[n_code:]) == {2}
    assert data.sample_ids(seed=3, start=5, count=3) == ids[5:8].tolist()
    assert data.sample_ids(seed=4, start=0, count=8) != ids[:8].tolist()


def test_pack_rejects_too_small_data_and_unknown_weights(corpus, tmp_path):
    write_dataset(tmp_path / "one", [{"id": "a", "text": "x = 1\n"}], stage="test")
    with pytest.raises(BadInput, match="too small"):
        pack([tmp_path / "one"], corpus / "tok", tmp_path / "p1", PackParams(seq_len=SEQ_LEN))
    with pytest.raises(BadInput, match="unknown sources"):
        pack([corpus / "code"], corpus / "tok", tmp_path / "p2", PackParams(seq_len=SEQ_LEN, weights={"nope": 2.0}))


def test_lr_warms_up_linearly_then_decays_linearly():
    config = config_from_dict({"preset": "phi-1-pretrain"})
    factor = lr_lambda(config)
    assert factor(0) == pytest.approx(1 / 750) and factor(749) == 1.0
    assert factor(750 + (36_000 - 750) // 2) == pytest.approx(0.5, abs=1e-4) and factor(36_000) == 0.0


def test_wsd_holds_the_lr_then_decays_over_the_last_fraction_of_each_budget():
    config = config_from_dict({"preset": "tiny-pretrain", "schedule": "wsd", "warmup_steps": 10, "max_steps": 100,
                               "decay_fraction": 0.2, "budgets": [50]})
    trunk, branch = lr_lambda(config), lr_lambda(config, 50)
    assert trunk(5) == branch(5) == pytest.approx(0.6) and trunk(79) == branch(39) == 1.0
    assert trunk(90) == pytest.approx(0.5) and branch(45) == pytest.approx(0.5) and trunk(100) == branch(50) == 0.0
    for bad in ({"budgets": [50], "schedule": "linear"}, {"budgets": [100]}, {"budgets": [60, 50]}, {"budgets": [5]}):
        with pytest.raises(BadInput, match="budget"):
            config_from_dict({"preset": "tiny-pretrain", "schedule": "wsd", "warmup_steps": 10, "max_steps": 100,
                              **bad})


def test_cooldown_branches_equal_separate_runs_and_leave_the_trunk_unchanged(corpus, tmp_path):
    wsd = {"schedule": "wsd", "decay_fraction": 0.25, "checkpoint_every": 1000, "eval_every": 1000}
    summary = train(_tiny(max_steps=16, budgets=[8], **wsd), corpus / "packed", tmp_path / "branched")
    train(_tiny(max_steps=8, **wsd), corpus / "packed", tmp_path / "short")
    train(_tiny(max_steps=16, **wsd), corpus / "packed", tmp_path / "long")
    assert [b["steps"] for b in summary["budgets"]] == [8, 16]
    branch = Path(summary["budgets"][0]["model"])
    assert (branch / "model.safetensors").read_bytes() == (tmp_path / "short" / "model.safetensors").read_bytes()
    assert _losses(tmp_path / "branched") == _losses(tmp_path / "long")
    assert (tmp_path / "branched" / "model.safetensors").read_bytes() == \
        (tmp_path / "long" / "model.safetensors").read_bytes()


def test_the_recipe_seed_reaches_initialisation_and_data_order(corpus, tmp_path):
    from syllabus.config import StageContext
    from syllabus.train.loop import TrainStageParams, pretrain_stage

    params = TrainStageParams(preset="tiny-pretrain", overrides=_tiny().model_dump(exclude={"seed"}))
    first_losses = {}
    for seed in (0, 1):
        out = tmp_path / f"seed{seed}"
        pretrain_stage(params, {"data": corpus / "packed"}, out, StageContext(run_dir=tmp_path, stage="t", seed=seed))
        assert json.loads((out / "train_config.json").read_text())["config"]["seed"] == seed
        first_losses[seed] = _losses(out)[0]
    assert first_losses[0] != first_losses[1]


def test_presets_carry_the_papers_hyperparameters():
    pre, ft = config_from_dict({"preset": "phi-1-pretrain"}), config_from_dict({"preset": "phi-1-finetune"})
    assert (pre.lr, pre.warmup_steps, pre.max_steps, pre.weight_decay, pre.batch_size, pre.dropout) == \
        (1e-3, 750, 36_000, 0.1, 1024, 0.1)
    assert (ft.lr, ft.warmup_steps, ft.max_steps, ft.weight_decay, ft.batch_size) == (1e-4, 50, 6_000, 0.01, 256)
    with pytest.raises(BadInput, match="micro_batch_size"):
        config_from_dict({"preset": "tiny-pretrain", "batch_size": 10, "micro_batch_size": 4})


def test_checkpoint_is_atomic_pruned_and_checked(tmp_path):
    root = tmp_path / "checkpoints"
    for step in (1, 2, 3):
        save_checkpoint(root, step, {"step": step, "w": torch.full((2,), float(step))}, keep=2)
    (root / "step-00000004").mkdir()  # a kill mid-write leaves no done.json: never picked up
    (root / "step-00000004" / "state.pt").write_bytes(b"partial")
    assert sorted(p.name for p in root.glob("step-*")) == ["step-00000002", "step-00000003", "step-00000004"]
    assert latest_checkpoint(root).name == "step-00000003"
    assert load_checkpoint(latest_checkpoint(root))["w"].tolist() == [3.0, 3.0]
    with open(root / "step-00000003" / "state.pt", "r+b") as f:
        f.seek(10)
        f.write(b"\x00\x01\x02")
    with pytest.raises(BadInput, match="corrupt checkpoint"):
        load_checkpoint(root / "step-00000003")


def _tiny(**overrides):
    return config_from_dict({"preset": "tiny-pretrain", "max_steps": 8, "warmup_steps": 2, "batch_size": 8,
                             "micro_batch_size": 4, "eval_every": 4, "checkpoint_every": 3, "log_every": 1,
                             "model_overrides": TINY_MODEL, **overrides})


def _losses(out: Path) -> list[float]:
    return [r["loss"] for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines()) if "loss" in r]


def test_training_lowers_loss_and_exports_a_model_dir(corpus, tmp_path):
    summary = train(_tiny(max_steps=12, lr=1e-2), corpus / "packed", tmp_path / "run")
    losses = _losses(tmp_path / "run")
    assert len(losses) == 12 and losses[-1] < losses[0] - 0.5
    assert summary["steps"] == 12 and summary["val_loss"] < losses[0]
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        assert (tmp_path / "run" / name).exists()
    with pytest.raises(BadInput, match="--resume"):
        train(_tiny(), corpus / "packed", tmp_path / "run")
    # the same numbers in TensorBoard's event files (MFU only on GPUs)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    events.Reload()
    assert set(events.Tags()["scalars"]) == {"train/loss", "val/loss", "train/lr", "train/grad_norm",
                                             "perf/tokens_per_s"}
    assert [e.value for e in events.Scalars("train/loss")] == pytest.approx(losses, rel=1e-6)
    assert [e.step for e in events.Scalars("val/loss")] == [4, 8, 12]


def test_report_to_wandb_without_wandb_is_one_line(monkeypatch):
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real_find_spec(name, *a))
    with pytest.raises(BadInput, match=r"report_to: Value error, wandb is not installed: `pip install wandb`"):
        config_from_dict({"preset": "tiny-pretrain", "report_to": ["tensorboard", "wandb"]})
    with pytest.raises(BadInput, match=r"report_to\[0\]: Input should be 'tensorboard' or 'wandb'"):
        config_from_dict({"preset": "tiny-pretrain", "report_to": ["mlflow"]})


def test_run_killed_by_sigterm_resumes_to_a_bitwise_identical_loss_curve(corpus, tmp_path):
    settings = {"max_steps": 24, "dropout": 0.1, "checkpoint_every": 1000, "eval_every": 1000}
    train(_tiny(**settings), corpus / "packed", tmp_path / "straight")

    out = tmp_path / "killed"
    args = ["train", "run", "--preset", "tiny-pretrain", "--data", str(corpus / "packed"), "--out", str(out)]
    for key, value in _tiny(**settings).model_dump().items():
        args += ["--set", f"{key}={json.dumps(value)}"]
    proc = subprocess.Popen([sys.executable, "-m", "syllabus", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": str(REPO / "src"), **ONE_THREAD})
    deadline = time.time() + 60
    while time.time() < deadline and len(_losses(out) if (out / "metrics.jsonl").exists() else []) < 3:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr.decode()
    stopped_at = int(latest_checkpoint(out / "checkpoints").name.split("-")[1])
    assert 3 <= stopped_at < 24 and len(_losses(out)) == stopped_at

    train(_tiny(**settings), corpus / "packed", out, resume=True)
    assert _losses(out) == _losses(tmp_path / "straight")


LAUNCH_STEPS = {"max_steps": 8, "warmup_steps": 1, "eval_every": 4, "checkpoint_every": 2}


@pytest.fixture(scope="module")
def one_process(corpus, tmp_path_factory) -> list[dict]:
    """The metrics of the reference run: one process, 2 accumulated micro-batches of 4 per step."""
    out = tmp_path_factory.mktemp("one") / "run"
    train(_tiny(**LAUNCH_STEPS), corpus / "packed", out)
    return _metrics(out)


def _metrics(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def _launch_recipe(tmp_path: Path, corpus: Path, launch: dict, data: Path | None = None, **overrides) -> Path:
    path = tmp_path / "r.yaml"
    params = {"preset": "tiny-pretrain", "overrides": {**_tiny(**LAUNCH_STEPS).model_dump(mode="json"), **overrides}}
    path.write_text(json.dumps({"name": "t", "stages": [
        {"name": "pretrain", "uses": "train.pretrain", "inputs": {"data": str(data or corpus / "packed")},
         "params": params, "launch": launch}]}))
    return path


def _same_curve(got: list[dict], want: list[dict]) -> None:
    for key in ("loss", "val_loss", "grad_norm"):
        a, b = [r[key] for r in got if key in r], [r[key] for r in want if key in r]
        assert len(a) == len(b) > 0 and a == pytest.approx(b, rel=1e-5), key


def _check_two_processes_match_one(strategy: str, corpus: Path, tmp_path: Path, one_process: list[dict], cli) -> None:
    """2 ranks x micro-batch 4 under torchrun, launched by the recipe, train like 1 process x 2 micro-batches."""
    recipe = _launch_recipe(tmp_path, corpus, {"engine": "torchrun", "nproc_per_node": 2}, distributed=strategy)
    result = cli("run", str(recipe), "--out", str(tmp_path / "run"), **ONE_THREAD)
    assert result.returncode == 0, result.stderr[-3000:]
    _same_curve(_metrics(tmp_path / "run" / "pretrain"), one_process)
    assert (tmp_path / "run" / "pretrain" / "model.safetensors").exists()
    assert json.loads((tmp_path / "run" / ".state" / "pretrain.json").read_text())["summary"]["steps"] == 8


def test_ddp_on_two_processes_matches_one_process(corpus, tmp_path, one_process, cli):
    _check_two_processes_match_one("ddp", corpus, tmp_path, one_process, cli)


@pytest.mark.slow
def test_fsdp2_on_two_processes_matches_one_process(corpus, tmp_path, one_process, cli):
    _check_two_processes_match_one("fsdp", corpus, tmp_path, one_process, cli)


def _pid_of_rank(rank: int, job_dir: Path) -> int | None:
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            environ = (proc / "environ").read_bytes().split(b"\0")
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if f"RANK={rank}".encode() in environ and str(job_dir).encode() in cmdline:
            return int(proc.name)
    return None


def test_a_dead_rank_fails_the_stage_and_a_rerun_resumes_to_the_same_curve(corpus, tmp_path, one_process, cli):
    recipe = _launch_recipe(tmp_path, corpus, {"engine": "torchrun", "nproc_per_node": 2})
    run, out = tmp_path / "run", tmp_path / "run" / "pretrain"
    proc = subprocess.Popen([sys.executable, "-m", "syllabus", "run", str(recipe), "--out", str(run)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": str(REPO / "src"), **ONE_THREAD})
    deadline = time.time() + 120
    while time.time() < deadline and len(_losses(out) if (out / "metrics.jsonl").exists() else []) < 3:
        time.sleep(0.05)
    os.kill(_pid_of_rank(1, out / ".launch"), signal.SIGKILL)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 1, stderr.decode()[-3000:]
    last_line = stderr.decode().strip().splitlines()[-1]
    assert last_line.startswith("failed: pretrain: rank 1: Signal 9 (SIGKILL)"), last_line
    assert json.loads((run / ".state" / "pretrain.json").read_text())["status"] == "running"  # not done
    assert 2 <= int(latest_checkpoint(out / "checkpoints").name.split("-")[1]) < 8

    result = cli("run", str(recipe), "--out", str(run), **ONE_THREAD)
    assert result.returncode == 0 and "resuming from" in result.stderr, result.stderr[-3000:]
    _same_curve(_metrics(out), one_process)


def test_a_rank_with_bad_input_fails_the_stage_in_one_line(corpus, tmp_path, cli):
    recipe = _launch_recipe(tmp_path, corpus, {"engine": "torchrun", "nproc_per_node": 2}, data=tmp_path)
    result = cli("run", str(recipe), "--out", str(tmp_path / "run"), **ONE_THREAD)
    assert result.returncode == 2, result.stderr[-3000:]
    assert re.fullmatch(r"error: pretrain: rank [01]: .*not a packed dir.*", result.stderr.strip().splitlines()[-1])
    assert "Traceback" not in result.stderr.split("error: pretrain")[-1]


def test_slurm_launch_runs_torchrun_on_every_node_with_a_rendezvous(tmp_path):
    launch = Launch(engine="slurm", nnodes=4, nproc_per_node=8, srun_args=["--gpus-per-node=8"])
    assert slurm_command(launch, tmp_path / "job.json", job_id="77", first_node="gpu-001") == [
        "srun", "--nodes=4", "--ntasks-per-node=1", "--kill-on-bad-exit=1", "--gpus-per-node=8",
        sys.executable, "-m", "torch.distributed.run", "--nnodes=4", "--nproc_per_node=8", "--rdzv_backend=c10d",
        "--rdzv_endpoint=gpu-001:29500", "--rdzv_id=syllabus-77", "-m", "syllabus.train.launch",
        str(tmp_path / "job.json")]
    with pytest.raises(BadInput, match="inside a Slurm allocation"):
        launch_training(launch, TrainJob(config={}, data="d", out=str(tmp_path)))


@pytest.mark.parametrize("launch, message", [
    ({"engine": "process", "nproc_per_node": 2}, "engine process runs one process"),
    ({"engine": "torchrun", "nnodes": 2}, "torchrun launches one node"),
    ({"engine": "mpi"}, "stages[0].launch.engine: Input should be"),
])
def test_bad_launch_is_one_line_naming_the_key(corpus, tmp_path, launch, message):
    with pytest.raises(BadInput, match=re.escape(message)):
        run_recipe(load_recipe(_launch_recipe(tmp_path, corpus, launch)), tmp_path / "run", dry_run=True)


def test_ray_train_on_two_workers_matches_one_process(corpus, tmp_path, one_process, ray_cluster):
    recipe = load_recipe(_launch_recipe(tmp_path, corpus, {"engine": "ray", "nproc_per_node": 2}))
    summaries = run_recipe(recipe, tmp_path / "run")
    assert summaries["pretrain"]["steps"] == 8
    _same_curve(_metrics(tmp_path / "run" / "pretrain"), one_process)


def _invoke(*args: str):
    """Run a `syllabus` command in-process (a subprocess per command would re-import torch)."""
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=True)


def test_cli_pack_pretrain_finetune_and_bad_input(corpus, tmp_path, cli):
    packed = tmp_path / "packed"
    result = _invoke("train", "pack", "--data", f"{corpus / 'code'}=2", "--tokenizer", corpus / "tok",
                     "--seq-len", SEQ_LEN, "--val-fraction", "0.1", "--out", packed, "--workers", "1")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1])["train_tokens"] > 0
    assert json.loads((packed / "meta.json").read_text())["sources"][0]["weight"] == 2.0

    config = tmp_path / "pre.yaml"
    config.write_text("preset: tiny-pretrain\nmax_steps: 3\nwarmup_steps: 1\nmodel_overrides: {n_layer: 1, n_embd: 64, n_head: 2, n_inner: 256}\n")
    result = _invoke("train", "run", "--config", config, "--data", packed, "--out", tmp_path / "pre")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1])["steps"] == 3

    # finetune from the pretrained model dir on masked exercises
    ft_packed = tmp_path / "ft-packed"
    pack([corpus / "exercises"], corpus / "tok", ft_packed, PackParams(seq_len=SEQ_LEN, val_fraction=0.1))
    result = _invoke("train", "run", "--preset", "tiny-finetune", "--set", "max_steps=2", "--set", "warmup_steps=1",
                     "--data", ft_packed, "--init", tmp_path / "pre", "--out", tmp_path / "ft")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "ft" / "model.safetensors").exists()

    # bad input
    other_tok = tmp_path / "other-tok"
    train_tokenizer([corpus / "code"], 600, other_tok)
    pack([corpus / "code"], other_tok, tmp_path / "big-vocab", PackParams(seq_len=SEQ_LEN, val_fraction=0.1))
    mismatch = _invoke("train", "run", "--preset", "tiny-finetune", "--data", tmp_path / "big-vocab",
                       "--init", tmp_path / "pre", "--out", tmp_path / "x")
    assert isinstance(mismatch.exception, BadInput) and "tokenizer.json differs" in str(mismatch.exception)
    (tmp_path / "pre" / "tokenizer.json").unlink()  # a model dir without tokenizer: only the vocab check is left
    mismatch = _invoke("train", "run", "--preset", "tiny-finetune", "--data", tmp_path / "big-vocab",
                       "--init", tmp_path / "pre", "--out", tmp_path / "x")
    assert isinstance(mismatch.exception, BadInput) and "more than the model's vocab" in str(mismatch.exception)
    empty = _invoke("train", "run", "--preset", "tiny-pretrain", "--data", tmp_path, "--out", tmp_path / "y")
    assert isinstance(empty.exception, BadInput) and "not a packed dir" in str(empty.exception)
    # as a user sees it: one line, exit 2
    state = latest_checkpoint(tmp_path / "pre" / "checkpoints") / "state.pt"
    state.write_bytes(state.read_bytes()[:100])
    corrupt = cli("train", "run", "--config", str(config), "--data", str(packed), "--out", str(tmp_path / "pre"),
                  "--resume", **ONE_THREAD)
    assert corrupt.returncode == 2 and "corrupt checkpoint" in corrupt.stderr and "Traceback" not in corrupt.stderr


def test_recipe_runs_pack_and_pretrain_stages(corpus, tmp_path):
    from syllabus.config import load_recipe
    from syllabus.recipe import run_recipe

    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"""
name: t
stages:
  - {{name: packed, uses: train.pack, inputs: {{data: ["{corpus / 'code'}"], tokenizer: "{corpus / 'tok'}"}},
     params: {{seq_len: {SEQ_LEN}, val_fraction: 0.1}}}}
  - name: pretrain
    uses: train.pretrain
    inputs: {{data: packed}}
    params: {{preset: tiny-pretrain, overrides: {{max_steps: 2, warmup_steps: 1, model_overrides: {json.dumps(TINY_MODEL)}}}}}
""")
    summaries = run_recipe(load_recipe(recipe), tmp_path / "run")
    assert summaries["packed"]["train_tokens"] > 0 and summaries["pretrain"]["steps"] == 2
    assert (tmp_path / "run" / "pretrain" / "model.safetensors").exists()


def test_hf_dir_runs_in_transformers_stops_at_eos_and_evaluates_like_the_model_dir(corpus, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from syllabus.eval.run import Sampling, run_file
    from syllabus.model.generate import generate_ids, load_model_dir

    out, hf_dir = tmp_path / "run", tmp_path / "run" / "hf"
    train(_tiny(max_steps=60, lr=1e-2, eval_every=60, checkpoint_every=60), corpus / "packed", out, hf_out=hf_dir)
    tokenizer = AutoTokenizer.from_pretrained(hf_dir)
    eot = load_tokenizer(corpus / "tok").eot_id
    assert tokenizer.eos_token == tokenizer.bos_token == tokenizer.pad_token == "<|endoftext|>"
    assert tokenizer.eos_token_id == tokenizer.pad_token_id == eot
    assert json.loads((hf_dir / "special_tokens_map.json").read_text())["eos_token"] == "<|endoftext|>"
    assert json.loads((hf_dir / "generation_config.json").read_text())["eos_token_id"] == eot
    model = AutoModelForCausalLM.from_pretrained(hf_dir)
    assert (model.config.eos_token_id, model.config.bos_token_id) == (eot, eot)

    prompt = _code(7).split("    return")[0]
    ids = tokenizer(prompt, return_tensors="pt").input_ids
    generated = model.generate(ids, max_new_tokens=30, do_sample=False)[0, ids.shape[1]:].tolist()
    assert generated[-1] == eot and len(generated) < 30, tokenizer.decode(generated)
    ours, _ = load_model_dir(out)
    assert generate_ids(ours, [ids[0].tolist()], 30, eot_id=eot)[0] == generated[:-1]  # ours drops the EOT

    card = (hf_dir / "README.md").read_text()
    assert "| steps | 60 |" in card and f"| tokens | {60 * 8 * SEQ_LEN:,} |" in card and str(corpus / "packed") in card

    problems = tmp_path / "problems.jsonl"
    problems.write_text("".join(json.dumps({
        "task_id": f"add/{i}", "prompt": _code(i).split("    return")[0], "entry_point": f"add_{i}",
        "canonical_solution": f"    return x + {i}\n", "test": "def check(f):\n    assert f(1) == 2\n"}) + "\n"
        for i in range(0, 300, 30)))
    scores = [run_file("humaneval", str(model_dir), tmp_path / name, Sampling(max_new_tokens=30),
                       problems_path=problems, ks=(1,), workers=2).to_json()["pass@1"]
              for name, model_dir in (("ours", out), ("hf", hf_dir))]
    assert scores[0] == scores[1] > 0  # the tiny model writes `return x + 1` for a few
    assert (tmp_path / "ours" / "samples.jsonl").read_text() == (tmp_path / "hf" / "samples.jsonl").read_text()


def test_gpu_check_without_a_gpu_says_so_in_one_line():
    result = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_check.py")], capture_output=True,
                            text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO / "src"),
                                                         "CUDA_VISIBLE_DEVICES": ""})
    assert result.returncode == 0 and result.stdout.startswith("gpu_check: no CUDA GPU visible")
    assert result.stdout.count("\n") == 1
