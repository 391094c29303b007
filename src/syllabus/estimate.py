"""What a recipe will cost before it runs (`syllabus run RECIPE --dry-run`): per stage, where it runs, GPU-hours
and wall time of training, and the tokens and dollars of the LLMs it calls (teacher, judge).

Training FLOPs are FLOPs per token (syllabus.train.flops: 6 x parameters + attention) x tokens; GPU-hours
divide them by the peak bf16 FLOP/s of the recipe's `launch.gpu` at its stated `launch.mfu`; wall time
spreads them over the launch's world size. LLM tokens are upper bounds (every prompt answered at
max_tokens); dollars use the model's price from the editable table in syllabus.llm.prices, and an endpoint whose
model has no price there says so instead of guessing. For comparison, the phi-1 paper reports 770
A100-hours for its whole run.

The plan table is `PLAN_COLUMNS`: (header, function of a stage's estimate -> cell); add a column there.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from syllabus.config import Launch, Params, StageSpec
from syllabus.llm.prices import FREE, price_of, price_table

TRAIN_STAGES = ("train.pretrain", "train.finetune")
# assumed prompt sizes where a prompt's text is not known before the run (a template plus a topic or a name)
TEACHER_PROMPT_TOKENS = 250
JUDGE_REPLY_TOKENS = 64
CHARS_PER_TOKEN = 4  # code, roughly, for a judge's prompt built from a file's head


def model_parameters(preset: str, overrides: dict[str, Any] | None = None) -> int:
    from syllabus.model import Phi, PhiConfig

    with torch.device("meta"):
        return Phi(PhiConfig.preset(preset, **(overrides or {}))).num_params()


def training_estimate(params: Params, seq_len: int | None, launch: Launch) -> dict[str, Any]:
    """Tokens, FLOPs, GPU-hours and wall time of a train.pretrain / train.finetune stage."""
    from syllabus.model import PhiConfig
    from syllabus.train.config import config_from_dict
    from syllabus.train.flops import flops_per_token, peak_flops

    config = config_from_dict({"preset": params.preset, **params.overrides})
    model = PhiConfig.preset(config.model, **config.model_overrides)
    n_params = model_parameters(config.model, config.model_overrides)
    seq_len = seq_len or model.block_size
    tokens = config.max_steps * config.batch_size * seq_len
    flops = flops_per_token(n_params, model.n_layer, model.n_embd, seq_len) * tokens
    estimate = {"parameters": n_params, "tokens": tokens, "flops": flops, "gpu": launch.gpu, "mfu": launch.mfu,
                "world_size": launch.world_size}
    peak = peak_flops(launch.gpu)
    if peak is not None:
        estimate["gpu_hours"] = flops / (peak * launch.mfu) / 3600
        estimate["wall_hours"] = estimate["gpu_hours"] / launch.world_size
    return estimate


def llm_estimate(role: str, endpoint: str | list[str], model: str | None, requests: int, prompt_tokens: int,
                 completion_tokens: int, prices: Any = None, mode: str = "online") -> dict[str, Any]:
    """Tokens and dollars of `requests` calls to an endpoint at its model's price (syllabus.llm.prices,
    with the stage's `prices` overrides; the batch price in mode batch); free for offline and local models."""
    endpoints = endpoint if isinstance(endpoint, list) else [endpoint]
    remote = any(e.startswith(("http://", "https://")) for e in endpoints)
    estimate = {"llm_role": role, "llm_model": model or endpoints[0], "llm_requests": requests,
                "llm_prompt_tokens": requests * prompt_tokens, "llm_completion_tokens": requests * completion_tokens}
    price = price_of(model or "default", price_table(model or "default", prices)) if remote else FREE
    if price is not None and mode == "batch":
        price = price.batch()
    if price is not None:
        estimate["llm_usd"] = price.cost(estimate["llm_prompt_tokens"], estimate["llm_completion_tokens"])
    return estimate


def stage_estimate(spec: StageSpec, params: Params, specs: dict[str, StageSpec], launch: Launch) -> dict[str, Any]:
    if spec.uses in TRAIN_STAGES:
        data = specs.get(str(spec.inputs.get("data")))
        seq_len = data.params.get("seq_len") if data is not None else None
        return {"runs_on": _launch_place(launch), **training_estimate(params, seq_len, launch)}
    estimate: dict[str, Any] = {}
    if spec.uses.startswith("synth.") and hasattr(params, "teacher"):  # mined sources have no teacher
        if spec.uses == "synth.expand":
            requests = params.target_topics * params.fanout // (params.fanout - 1)  # splits, then one names list a leaf
            return llm_estimate("teacher", params.teacher, params.model, requests,
                                TEACHER_PROMPT_TOKENS // 2, params.max_tokens, params.prices, params.mode)
        estimate |= llm_estimate("teacher", params.teacher, params.model, params.n, TEACHER_PROMPT_TOKENS,
                                 params.max_tokens, params.prices, params.mode)
        estimate |= prompt_space_estimate(spec, params, specs)
        if params.budget_usd is not None:
            estimate["llm_budget_usd"] = params.budget_usd
    elif spec.uses == "curate.annotate" and params.judge != "heuristic":
        from syllabus.curate.judge import MAX_SNIPPET_CHARS

        estimate |= llm_estimate("judge", params.judge, params.model, params.n,
                                 MAX_SNIPPET_CHARS // CHARS_PER_TOKEN, JUDGE_REPLY_TOKENS, params.prices, params.mode)
    return estimate


def prompt_space_estimate(spec: StageSpec, params: Params, specs: dict[str, StageSpec]) -> dict[str, Any]:
    """Distinct prompts a synth.textbook / synth.exercises stage can form (syllabus.synth.prompts): its
    vocabulary (a synth.expand input counts at its targets) x its axes; a corpus-seeded stage x snippets."""
    from syllabus.config import validate
    from syllabus.synth.exercises import load_names
    from syllabus.synth.expand import ExpandParams
    from syllabus.synth.textbook import load_topics

    source = specs.get(str(spec.inputs.get("vocabulary")))
    grown = validate(ExpandParams, source.params, file=None) if source is not None and source.uses == "synth.expand" \
        else None
    if spec.uses == "synth.textbook":
        topics, audiences, styles = load_topics(params.topics or (grown.topics if grown else None))
        axes = {"topics": max(grown.target_topics, len(topics)) if grown else len(topics),
                "audiences": len(audiences), "styles": len(styles)}
    else:
        names = load_names(params.names or (grown.names if grown else None))
        axes = {"names": max(grown.target_names, len(names)) if grown else len(names)}
    axes |= {name: len(values) for name, values in params.axes.items()}
    return {"prompts_distinct": math.prod(axes.values()), "prompts_n": params.n, "prompts_axes": axes,
            "prompts_max_repeats": params.max_repeats, "prompts_seeded": bool(params.seeds or "seeds" in spec.inputs)}


def _prompts(e: dict[str, Any]) -> str:
    if "prompts_distinct" not in e:
        return ""
    distinct, n = e["prompts_distinct"], e["prompts_n"]
    seeded = " x corpus snippets" if e["prompts_seeded"] else ""
    verdict = "≥ n" if distinct >= n or seeded else \
        "< n, repeats" if distinct * e["prompts_max_repeats"] >= n else "< n x max_repeats: stops"
    return f"{distinct:,}{seeded} distinct for n {n:,} ({verdict})"


def _launch_place(launch: Launch) -> str:
    nodes = f"{launch.nnodes} nodes x {launch.nproc_per_node}" if launch.nnodes > 1 else f"{launch.nproc_per_node}"
    return f"{launch.engine}: world size {launch.world_size} ({nodes} {launch.gpu})"


def _hours(value: float) -> str:
    return f"{value:,.1f} h" if value >= 1 else f"{value * 60:,.0f} min"


def _compute(e: dict[str, Any]) -> str:
    if "tokens" not in e:
        return ""
    return (f"{e['parameters'] / 1e6:,.0f}M params x {e['tokens'] / 1e9:,.2f}B tokens = {e['flops']:.2e} FLOPs")


def _gpu_hours(e: dict[str, Any]) -> str:
    if "tokens" not in e:
        return ""
    if "gpu_hours" not in e:
        return f"unknown GPU {e['gpu']!r} (known: see syllabus.train.flops)"
    return f"{e['gpu_hours']:,.1f} {e['gpu']}-h at {e['mfu']:.0%} MFU"


def _wall(e: dict[str, Any]) -> str:
    return f"{_hours(e['wall_hours'])} on {e['world_size']} {e['gpu']}" if "wall_hours" in e else ""


def _llm(e: dict[str, Any]) -> str:
    if "llm_requests" not in e:
        return ""
    return (f"{e['llm_role']} {e['llm_model']}: {e['llm_requests']:,} calls, ≤ {e['llm_prompt_tokens'] / 1e6:,.1f}M in "
            f"+ {e['llm_completion_tokens'] / 1e6:,.1f}M out tokens")


def _dollars(e: dict[str, Any]) -> str:
    if "llm_requests" not in e:
        return ""
    cost = f"≤ ${e['llm_usd']:,.0f}" if "llm_usd" in e else \
        f"price unknown for {e['llm_model']!r} (add it to syllabus/llm/prices.py or the stage's prices)"
    return cost + (f" (budget cap ${e['llm_budget_usd']:,.0f})" if "llm_budget_usd" in e else "")


PLAN_COLUMNS: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
    ("runs on", lambda e: e.get("runs_on", "")),
    ("training compute", _compute),
    ("GPU-hours", _gpu_hours),
    ("wall time", _wall),
    ("LLM tokens", _llm),
    ("LLM $", _dollars),
    ("prompts", _prompts),
]


def plan_totals(estimates: list[dict[str, Any]]) -> str:
    """One line under the table: GPU-hours and wall time of training, dollars of LLM calls."""
    gpu_hours = sum(e.get("gpu_hours", 0.0) for e in estimates)
    wall = sum(e.get("wall_hours", 0.0) for e in estimates)
    dollars = sum(e.get("llm_usd", 0.0) for e in estimates)
    unpriced = sorted({e["llm_model"] for e in estimates if "llm_requests" in e and "llm_usd" not in e})
    line = f"training ≈ {gpu_hours:,.1f} GPU-hours, {_hours(wall)} wall; LLM calls ≤ ${dollars:,.0f}"
    line += f" + unpriced: {', '.join(unpriced)}" if unpriced else ""
    return line + (f"\nLLM tokens are upper bounds: every reply at max_tokens, a teacher prompt ~{TEACHER_PROMPT_TOKENS} "
                   "tokens, a judge prompt a file's head at full length")
