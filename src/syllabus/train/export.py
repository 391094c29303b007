"""The Hugging Face dir a train stage leaves beside its own model dir: what transformers, vLLM, evalplus and
lm-eval load as they are.

    config.json, model.safetensors   PhiForCausalLM, bos/eos = the tokenizer's <|endoftext|>
    generation_config.json           bos/eos/pad = <|endoftext|>, so generate() stops at the end of a document
    tokenizer.json, tokenizer_config.json, special_tokens_map.json
    README.md                        model card: data, steps, tokens, losses (and eval results when known)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from syllabus.data.files import atomic_write_text


def write_hf_dir(model, tokenizer, out: str | Path, card: dict[str, Any]) -> Path:
    """Export `model` (a syllabus Phi) with `tokenizer` (syllabus.tokenizer.Tokenizer) into the dir `out`."""
    out = Path(out)
    hf = model.to_hf(eot_id=tokenizer.eot_id)
    hf.generation_config.pad_token_id = tokenizer.eot_id  # no "pad_token_id not set" warning on every generate
    hf.save_pretrained(out)
    tokenizer.save_hf(out, model_max_length=model.config.block_size)
    atomic_write_text(out / "README.md", model_card(card))
    return out


def model_card(card: dict[str, Any]) -> str:
    """A Hugging Face model card: front matter, what it was trained on and for how long, how to run it."""
    lines = ["---", "library_name: transformers", "pipeline_tag: text-generation", "tags: [syllabus, phi, code]",
             "---", "", f"# {card['name']}", "",
             "A phi-architecture code model trained with syllabus (the phi-1 recipe, "
             "\"Textbooks Are All You Need\").", "", "## Training", "",
             "| | |", "|---|---|"]
    rows = {
        "architecture": card.get("architecture"),
        "parameters": f"{card['parameters'] / 1e6:,.1f}M" if "parameters" in card else None,
        "initialised from": card.get("init"),
        "data": card.get("data"),
        "steps": card.get("steps"),
        "tokens": f"{card['tokens']:,}" if "tokens" in card else None,
        "final train loss": _number(card.get("loss")),
        "final validation loss": _number(card.get("val_loss")),
        "hyper-parameters": card.get("hyperparameters"),
    }
    lines += [f"| {key} | {value} |" for key, value in rows.items() if value is not None]
    evals = card.get("eval") or {}
    if evals:
        lines += ["", "## Evaluation", "", "| benchmark | metric | value |", "|---|---|---|"]
        lines += [f"| {bench} | {metric} | {_number(value)} |"
                  for bench, metrics in evals.items() for metric, value in metrics.items()]
    lines += ["", "## Use", "", "```python",
              "from transformers import AutoModelForCausalLM, AutoTokenizer",
              "tokenizer = AutoTokenizer.from_pretrained(PATH)",
              "model = AutoModelForCausalLM.from_pretrained(PATH)",
              "ids = tokenizer('def fib(n):', return_tensors='pt').input_ids",
              "print(tokenizer.decode(model.generate(ids, max_new_tokens=128)[0]))  # stops at <|endoftext|>",
              "```", "", "or `vllm serve PATH`, `syllabus serve --model PATH`, `syllabus eval run --model PATH`.", ""]
    return "\n".join(lines)


def _number(value: Any) -> str | None:
    return None if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)
