import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 600, **env: str) -> subprocess.CompletedProcess:
    """Run `python -m syllabus ARGS` in a subprocess, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "syllabus", *args],
        capture_output=True, text=True, cwd=cwd, timeout=timeout,
        env={**os.environ, "PYTHONPATH": str(REPO / "src"), **env},
    )


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture(scope="session")
def ray_cluster():
    """One local Ray cluster (2 CPUs) shared by every test that runs a stage with executor="ray"."""
    ray = pytest.importorskip("ray")
    # Ray workers must import syllabus and the test modules that define steps
    path = [str(REPO / "src"), str(REPO / "tests"), os.environ.get("PYTHONPATH", "")]
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(path)}})
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def assert_same_output():
    """assert_same_output(a, b): two runs of a stage wrote the same records, shards and stats."""

    def check(a, b) -> None:
        assert list(a.records()) == list(b.records())
        assert [s.sha256 for s in a.shards] == [s.sha256 for s in b.shards]
        assert a.stats == b.stats

    return check


SMALL_FUNCTIONS = [f"def f{i}(x):\n    return x + {i}\n" for i in range(50)]


def write_texts(path: Path, texts: list[str]):
    """A dataset dir of one record per text (id: the text's record id)."""
    from syllabus.data.dataset import record_id, write_dataset

    return write_dataset(path, [{"id": record_id(t), "text": t} for t in texts], stage="test")


def build_model_dir(out: Path, *, texts: list[str] = SMALL_FUNCTIONS, tokenizer=None, seed: int = 0,
                    **config) -> Path:
    """A random tiny syllabus model dir: a BPE tokenizer trained on `texts` (or the `tokenizers.Tokenizer`
    given) and a Phi of the "tiny" preset with `config` overrides (default: 1 layer, 32 wide)."""
    import torch

    from syllabus.model import Phi, PhiConfig
    from syllabus.tokenizer import Tokenizer, train_tokenizer

    if tokenizer is None:
        write_texts(out.parent / f"{out.name}-texts", texts)
        vocab_size = train_tokenizer([out.parent / f"{out.name}-texts"], vocab_size=400, out_dir=out).vocab_size
    else:
        Tokenizer(tokenizer).save(out)
        vocab_size = tokenizer.get_vocab_size()
    torch.manual_seed(seed)
    shape = {"vocab_size": vocab_size, "n_layer": 1, "n_embd": 32, "n_head": 2, "n_inner": 64, "rotary_dim": 8}
    Phi(PhiConfig.preset("tiny", **{**shape, **config})).save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def make_model_dir():
    """build_model_dir, for module- and session-scoped fixtures."""
    return build_model_dir


@pytest.fixture
def tiny_model_dir(tmp_path) -> Path:
    """A random 1-layer syllabus model dir with a BPE tokenizer trained on small functions."""
    return build_model_dir(tmp_path / "m")


@pytest.fixture(scope="session")
def make_dataset():
    """write_texts(path, texts): a dataset dir of one record per text."""
    return write_texts


@pytest.fixture
def one_thread():
    """On a few shared cores torch's thread pool spins against other processes: one thread is ~10x faster."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def model_configs() -> dict:
    from syllabus.model import PhiConfig

    return {
        "tiny": PhiConfig.preset("tiny", n_layer=2, vocab_size=512),
        "odd": PhiConfig(name="odd", vocab_size=300, block_size=64, n_layer=3, n_head=3, n_embd=96, n_inner=200,
                         rotary_dim=16),
        "full-rotary": PhiConfig(name="full-rotary", vocab_size=256, block_size=64, n_layer=1, n_head=2, n_embd=64,
                                 n_inner=128, rotary_dim=32, rope_theta=500.0, layer_norm_eps=1e-6),
    }


@pytest.fixture
def random_model():
    """random_model(config="tiny", seed=0): a Phi (config: a name of model_configs() or a PhiConfig) with
    non-zero biases and LayerNorm affines, so a mis-mapped one shows."""
    import torch

    from syllabus.model import Phi

    def build(config="tiny", seed: int = 0) -> Phi:
        torch.manual_seed(seed)
        model = Phi(model_configs()[config] if isinstance(config, str) else config).eval()
        with torch.no_grad():
            for name, p in model.named_parameters():
                if not name.endswith("weight") or "ln" in name or "layernorm" in name:
                    p.add_(torch.randn_like(p) * 0.1)
        return model

    return build


CODE_SNIPPETS = {
    "documented": '''def gcd(a: int, b: int) -> int:
    """Greatest common divisor by Euclid's algorithm.

    >>> gcd(12, 18)
    6
    """
    while b:
        a, b = b, a % b  # the remainder shrinks every step
    return a
''',
    "glue": "from .registry import register\nfrom .backends import Backend\nregister('x', Backend, settings.X)\n",
    "generated": "# This file is auto-generated. DO NOT EDIT.\nTABLE = [1, 2, 3, 4, 5, 6, 7, 8, 9]\n",
}


@pytest.fixture
def snippets():
    """Three kinds of code: a documented lesson, import glue, a generated table."""
    from types import SimpleNamespace

    return SimpleNamespace(**CODE_SNIPPETS)


def write_code_corpus(root: Path, n: int = 40) -> Path:
    """A dir of small Python files: half explained (docstrings, comments), half terse, one copied twice,
    and HumanEval/0's solution (so decontamination has something to find)."""
    from syllabus.benchmarks import load_benchmark

    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        if i % 2:
            text = (f'"""Lesson {i}: adding numbers step by step."""\n\n\n'
                    f"def add_{i}(values):\n"
                    f'    """Return the sum of values plus {i}.\n\n    >>> add_{i}([1, 2])\n    {3 + i}\n    """\n'
                    f"    # start from {i} and add each value in turn\n    total = {i}\n"
                    f"    for value in values:\n        total += value\n    return total\n")
        else:
            text = f"x{i}=[{i}]*{i}\ny{i}=lambda a:a*{i}\n"
        (root / f"m{i:02d}.py").write_text(text)
    (root / "copy.py").write_text((root / "m01.py").read_text())
    problem = load_benchmark("humaneval")[0]
    (root / "leak.py").write_text(problem.prompt + problem.canonical_solution)
    return root


TINY_RECIPE = """
name: tiny
description: every stage on tiny data, for tests
defaults: {{workers: 1, seed: 0}}
stages:
  - {{name: raw, uses: data.ingest, params: {{sources: ["{code}"]}}}}
  - {{name: labels, uses: curate.annotate, inputs: {{data: raw}}, params: {{judge: heuristic, n: 60}}}}
  - name: classifier
    uses: curate.train
    inputs: {{labels: labels}}
    params: {{embedder: hashing+features, model: logreg, folds: 3, tune_threshold: false}}
  - {{name: filtered, uses: curate.filter, inputs: {{data: raw, classifier: classifier}}, params: {{keep_fraction: 0.8}}}}
  - {{name: deduped, uses: dedup, inputs: {{data: filtered}}}}
  - {{name: textbook, uses: synth.textbook, params: {{n: 6}}}}
  - {{name: exercises, uses: synth.exercises, params: {{n: 8, workers: 1}}}}
  - {{name: code, uses: decontam, inputs: {{data: deduped}}, params: {{benchmarks: [humaneval]}}}}
  - {{name: tokenizer, uses: tokenizer.train, inputs: {{data: [code, textbook]}}, params: {{vocab_size: 400, min_frequency: 1}}}}
  - {{name: packed, uses: train.pack, inputs: {{data: [code, textbook], tokenizer: tokenizer}}, params: {{seq_len: 32, val_fraction: 0.2}}}}
  - name: base
    uses: train.pretrain
    inputs: {{data: packed}}
    params: {{preset: tiny-pretrain, overrides: {{max_steps: 4, warmup_steps: 1, batch_size: 2, micro_batch_size: 2, eval_every: 2, eval_batches: 1, model_overrides: {{n_layer: 1, n_embd: 32, n_head: 2, n_inner: 64, rotary_dim: 8}}}}}}
  - {{name: packed_exercises, uses: train.pack, inputs: {{data: exercises, tokenizer: tokenizer}}, params: {{seq_len: 64, val_fraction: 0.5}}}}
  - name: finetuned
    uses: train.finetune
    inputs: {{data: packed_exercises, init: base}}
    params: {{preset: tiny-finetune, overrides: {{max_steps: 2, warmup_steps: 1, batch_size: 2, micro_batch_size: 2, eval_every: 1, eval_batches: 3}}}}
  - name: eval_base
    uses: eval
    inputs: {{model: base}}
    params: {{benchmarks: [humaneval, mbpp, unconventional], limit: 2, max_new_tokens: 8, probes: true, grade: offline}}
  - {{name: eval_finetuned, uses: eval, inputs: {{model: finetuned}}, params: {{benchmarks: [humaneval, mbpp], limit: 2, max_new_tokens: 8}}}}
  - {{name: mutants, uses: eval.mutants, params: {{benchmarks: [humaneval], limit: 3}}}}
  - {{name: scale_base, uses: eval.scaling, inputs: {{model: base, mutants: mutants}}, params: {{benchmarks: [humaneval], limit: 3, samples: 2, max_new_tokens: 8}}}}
  - {{name: scale_finetuned, uses: eval.scaling, inputs: {{model: finetuned, mutants: mutants}}, params: {{benchmarks: [humaneval], limit: 3, passk: false}}}}
  - name: arms
    uses: ablation
    inputs: {{a: [scale_base], d: [scale_finetuned]}}
    params: {{contrasts: [[d, a]], curves: [], primary: [humaneval], draws: 100}}
  - {{name: page, uses: report}}
"""


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """A run dir left by `syllabus run` of every stage kind on tiny data (built once per session: treat it as
    read-only, or copy it)."""
    from syllabus.config import load_recipe
    from syllabus.recipe import run_recipe

    root = tmp_path_factory.mktemp("tiny_run")
    recipe = root / "tiny.yaml"
    recipe.write_text(TINY_RECIPE.format(code=write_code_corpus(root / "code")))
    run_recipe(load_recipe(recipe), root / "run")
    return root / "run"
