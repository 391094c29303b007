"""The models eval can query: an OpenAI-compatible endpoint, a Hugging Face model dir, or a
syllabus model dir. All complete prompts the Codex/phi-1 way (each completion cut at the first
stop sequence); the two local kinds also score text (negative log-likelihood).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Protocol

from syllabus.codetext import truncate_at_stop
from syllabus.device import default_device
from syllabus.errors import BadInput

# Codex / phi-1 stop sequences: the function body ends where top-level code starts again.
STOP = ["\ndef", "\nclass", "\nif", "\nprint", "\n#"]
API_STOP = STOP[:4]  # OpenAI's API takes at most four; the fifth is cut client-side


def cut_at_stop(text: str) -> str:
    """A completion up to the first Codex stop sequence."""
    return truncate_at_stop(text, STOP)[0]


class CompletionModel(Protocol):
    name: str  # what was opened: a dir or URL
    draws_progress: bool  # True if complete() shows its own progress bar
    batch_size: int
    def complete(self, prompts: list[str], samples: list[int], *, temperature: float, top_p: float,
                 max_new_tokens: int, seed: int) -> list[str]:
        """One completion per prompt; samples[i] numbers the sample of prompts[i] (seeds, caching)."""
        ...


class ScoringModel(CompletionModel, Protocol):
    def nll(self, context: str, continuation: str) -> tuple[float, int]:
        """Summed negative log-likelihood (nats) of continuation's tokens given context, and their count."""
        ...


class EndpointModel:
    """Any OpenAI-compatible /v1/completions server, through syllabus.llm (bounded concurrency,
    retries, optional reply cache so that an interrupted run re-sends nothing)."""

    draws_progress = True  # LLMClient shows its own progress bar

    def __init__(self, url: str, model: str | None = None, concurrency: int = 8, cache_dir: str | Path | None = None):
        from syllabus.llm import LLMClient

        self.client = LLMClient(url, model=model, concurrency=concurrency, cache_dir=cache_dir)
        self.name = url if model is None else f"{url} ({model})"
        self.batch_size = concurrency

    def complete(self, prompts, samples, *, temperature, top_p, max_new_tokens, seed):
        replies = self.client.complete_many(prompts, samples=samples, description="generating",
                                            temperature=temperature, top_p=top_p, max_tokens=max_new_tokens,
                                            stop=API_STOP, seed=seed)
        failed = [r.error for r in replies if not r.ok]
        if failed:
            raise RuntimeError(f"{len(failed)} of {len(replies)} requests failed, e.g. {failed[0]}")
        return [cut_at_stop(r.text) for r in replies]


class HFModel:
    """A local Hugging Face causal-LM dir, run with transformers in this process."""

    draws_progress = False

    def __init__(self, path: str | Path, device: str | None = None, batch_size: int = 8):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.name = str(path)
        self.torch = torch
        self.device = default_device(device)
        dtype = torch.bfloat16 if self.device.startswith("cuda") else torch.float32
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(path)
            self.model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype).to(self.device).eval()
        except (OSError, ValueError) as e:
            raise BadInput(f"cannot load a Hugging Face causal LM ({e})", file=path) from None
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.batch_size = batch_size
        config = self.model.config
        self.context = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", 2048)

    def complete(self, prompts, samples, *, temperature, top_p, max_new_tokens, seed):
        torch = self.torch
        out = []
        for start in range(0, len(prompts), self.batch_size):
            batch = prompts[start:start + self.batch_size]
            torch.manual_seed(seed + samples[start])
            inputs = self.tokenizer(batch, return_tensors="pt", padding=True).to(self.device)
            sampling = {"do_sample": True, "temperature": temperature, "top_p": top_p} if temperature > 0 else \
                {"do_sample": False}
            with torch.no_grad():
                ids = self.model.generate(**inputs, max_new_tokens=max_new_tokens, stop_strings=STOP,
                                          tokenizer=self.tokenizer, pad_token_id=self.tokenizer.pad_token_id,
                                          **sampling)
            new = ids[:, inputs["input_ids"].shape[1]:]
            out += [cut_at_stop(t) for t in self.tokenizer.batch_decode(new, skip_special_tokens=True)]
        return out

    def nll(self, context, continuation):
        torch = self.torch
        ctx = self.tokenizer(context, add_special_tokens=False)["input_ids"]
        cont = self.tokenizer(continuation, add_special_tokens=False)["input_ids"]
        ids = (ctx + cont)[-self.context:]
        with torch.no_grad():
            logits = self.model(torch.tensor([ids], device=self.device)).logits[0].float()
        return _summed_nll(torch, logits, ids, min(len(cont), len(ids) - 1))


class SyllabusModel:
    """A syllabus model dir (config.json with architecture "syllabus-phi", model.safetensors,
    tokenizer.json), run with syllabus.model in this process."""

    draws_progress = False

    def __init__(self, path: str | Path, device: str | None = None, batch_size: int = 8):
        import torch

        from syllabus.model.generate import load_model_dir

        self.name = str(path)
        self.torch = torch
        self.device = default_device(device)
        self.model, self.tokenizer = load_model_dir(path, device=self.device)
        self.batch_size = batch_size

    def complete(self, prompts, samples, *, temperature, top_p, max_new_tokens, seed):
        from syllabus.model.generate import generate

        # A prompt longer than the context keeps its end (the signature and docstring).
        block = self.model.config.block_size
        keep = max(block - max_new_tokens, block // 2)
        prompts = [self.tokenizer.decode(ids[-keep:]) if len(ids) > keep else p
                   for p, ids in zip(prompts, self.tokenizer.encode_batch(prompts))]
        out = []
        for start in range(0, len(prompts), self.batch_size):
            texts = generate(self.model, self.tokenizer, prompts[start:start + self.batch_size],
                             max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, stop=STOP,
                             batch_size=self.batch_size, seed=seed + samples[start])
            out += [cut_at_stop(t) for t in texts]
        return out

    def nll(self, context, continuation):
        torch = self.torch
        cont = self.tokenizer.encode(continuation)
        ids = (self.tokenizer.encode(context) + cont)[-self.model.config.block_size:]
        with torch.no_grad():
            logits = self.model(torch.tensor([ids], device=self.device))[0].float()
        return _summed_nll(torch, logits, ids, min(len(cont), len(ids) - 1))


def _summed_nll(torch, logits, ids: list[int], n: int) -> tuple[float, int]:
    """-sum log p(ids[t] | ids[:t]) over the last n tokens, given logits [T, vocab] for ids."""
    if n <= 0:
        return 0.0, 0
    target = torch.tensor(ids[-n:], device=logits.device)
    logprobs = torch.log_softmax(logits[-n - 1:-1], dim=-1)
    return float(-logprobs.gather(1, target[:, None]).sum()), n


def open_model(spec: str, *, model_name: str | None = None, concurrency: int = 8, cache_dir: str | Path | None = None,
               device: str | None = None, batch_size: int = 8) -> CompletionModel:
    """An http(s) URL (OpenAI-compatible server), a syllabus model dir, or a Hugging Face model dir."""
    if spec.startswith(("http://", "https://")):
        return EndpointModel(spec, model_name, concurrency, cache_dir)
    path = Path(spec)
    config = path / "config.json"
    if not config.is_file():
        raise BadInput("expected an http(s) URL or a model dir with config.json", file=path)
    try:
        architecture = json.loads(config.read_text()).get("architecture")
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        raise BadInput("config.json is not a JSON object", file=config) from None
    if architecture == "syllabus-phi":
        return SyllabusModel(path, device, batch_size)
    return HFModel(path, device, batch_size)


def scoring_model(spec: str, **kwargs) -> ScoringModel:
    model = open_model(spec, **kwargs)
    if not hasattr(model, "nll"):
        raise BadInput(f"{spec}: NLL needs a local model dir (an endpoint returns no token log-probabilities)")
    return model  # type: ignore[return-value]
