"""Text generation with a KV cache: batched prompts (left padded), greedy or temperature/top-p, stop strings.

Finished sequences leave the batch (their cache rows are dropped), so a batch costs what its
still-running sequences cost.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from syllabus.codetext import truncate_at_stop
from syllabus.errors import BadInput
from syllabus.model.phi import KVCache, Phi


def sample_next(logits: torch.Tensor, temperature: float, top_p: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Next token ids (B,) from last-position logits (B, vocab)."""
    if temperature <= 0:
        return logits.argmax(dim=-1)
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    if top_p < 1.0:
        sorted_probs, order = probs.sort(dim=-1, descending=True)
        # keep the smallest set of top tokens whose mass reaches top_p (the most likely always stays)
        sorted_probs[sorted_probs.cumsum(dim=-1) - sorted_probs >= top_p] = 0.0
        probs = torch.zeros_like(probs).scatter_(-1, order, sorted_probs)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


@torch.inference_mode()
def generate_ids(
    model: Phi,
    prompts: list[list[int]],
    max_new_tokens: int,
    temperature: float = 0.0,
    top_p: float = 1.0,
    eot_id: int | None = None,
    on_token: Callable[[int, list[int]], bool] | None = None,
    generator: torch.Generator | None = None,
) -> list[list[int]]:
    """New token ids for each prompt (without the prompt, without the end-of-text token).

    A sequence ends at eot_id, after max_new_tokens, or when on_token(prompt index, its new ids),
    called after each new token, returns True.
    """
    config = model.config
    device = next(model.parameters()).device
    longest = max(len(p) for p in prompts)
    if min(len(p) for p in prompts) == 0:
        raise BadInput("empty prompt: generation needs at least one token")
    if longest >= config.block_size:
        raise BadInput(f"prompt of {longest} tokens does not fit the model's context of {config.block_size}")
    max_new_tokens = min(max_new_tokens, config.block_size - longest)
    new_ids: list[list[int]] = [[] for _ in prompts]
    if max_new_tokens <= 0:
        return new_ids

    ids = torch.zeros(len(prompts), longest, dtype=torch.long)
    for i, p in enumerate(prompts):
        ids[i, longest - len(p) :] = torch.tensor(p)
    ids = ids.to(device)
    mask = None  # prompts of equal length need no mask: SDPA's causal fast path
    if any(len(p) < longest for p in prompts):
        starts = torch.tensor([longest - len(p) for p in prompts], device=device)
        mask = (torch.arange(longest, device=device)[None] >= starts[:, None]).long()
    rows = list(range(len(prompts)))  # prompt index of each batch row still generating
    cache = KVCache(config, len(prompts), longest + max_new_tokens, device, next(model.parameters()).dtype)
    logits = model(ids, attention_mask=mask, cache=cache, last_only=True)[:, -1]
    for step in range(max_new_tokens):
        next_ids = sample_next(logits, temperature, top_p, generator)
        keep = []
        for b, token in enumerate(next_ids.tolist()):
            i = rows[b]
            if token == eot_id:
                continue
            new_ids[i].append(token)
            if not (on_token and on_token(i, new_ids[i])):
                keep.append(b)
        if not keep or step == max_new_tokens - 1:
            break
        if len(keep) < len(rows):
            index = torch.tensor(keep, device=device)
            cache.select(index)
            next_ids = next_ids[index]
            mask = mask[index] if mask is not None else None
            rows = [rows[b] for b in keep]
        if mask is not None:
            mask = torch.cat([mask, mask.new_ones(len(rows), 1)], dim=1)
        logits = model(next_ids[:, None], attention_mask=mask, cache=cache)[:, -1]
    return new_ids


def generate(
    model: Phi,
    tokenizer,
    prompts: list[str],
    max_new_tokens: int = 256,
    temperature: float = 0.0,
    top_p: float = 1.0,
    stop: list[str] | None = None,
    batch_size: int = 16,
    seed: int | None = None,
) -> list[str]:
    """Completions of text prompts (the prompt not repeated), each cut before the first stop string."""
    tokenizer.check_fits(model.config.vocab_size)
    stop = list(stop or [])
    generator = torch.Generator(device=next(model.parameters()).device).manual_seed(seed) if seed is not None else None
    encoded = tokenizer.encode_batch(prompts)

    # checked after every token, a stop string ends in the newest one, and n characters span at most 4n
    # tokens (a UTF-8 character is at most 4 bytes), so decoding that tail of the ids is enough
    tail = 4 * max(map(len, stop), default=0)

    def hit_stop(_: int, ids: list[int]) -> bool:
        return truncate_at_stop(tokenizer.decode(ids[-tail:]), stop)[1]

    # similar lengths batched together waste less compute on padding
    order = sorted(range(len(prompts)), key=lambda i: len(encoded[i]))
    completions: list[str] = [""] * len(prompts)
    for start in range(0, len(order), batch_size):
        batch = order[start : start + batch_size]
        out = generate_ids(
            model, [encoded[i] for i in batch], max_new_tokens, temperature, top_p, tokenizer.eot_id,
            on_token=hit_stop if stop else None, generator=generator,
        )
        for i, ids in zip(batch, out):
            completions[i] = truncate_at_stop(tokenizer.decode(ids), stop)[0]
    return completions


def load_model_dir(path: str | Path, device=None, dtype: torch.dtype | None = None):
    """(Phi, Tokenizer) of a model dir: its weights and tokenizer.json, checked to fit each other."""
    from syllabus.tokenizer import load_tokenizer

    path = Path(path)
    model = Phi.from_pretrained(path, device=device, dtype=dtype).eval()
    tokenizer = load_tokenizer(path)
    tokenizer.check_fits(model.config.vocab_size, model=path)
    return model, tokenizer
