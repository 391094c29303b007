"""What every stage that pays for an LLM (annotate, synth, grade) says about paying, under one set of
names: `budget_usd`, `prices` (overrides of the price table) and `mode` (online, or the Batch API)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from syllabus.config import Params
from syllabus.llm.prices import PriceSpec


class SpendParams(Params):
    budget_usd: float | None = Field(None, ge=0, description="spend at most this many USD (the model's price must "
                                                             "be known: see prices)")
    prices: PriceSpec | dict[str, PriceSpec] | None = Field(
        None, description="USD per million input, output tokens of the model ([0.5, 1.5]), or a table by model "
                          "name ({gpt-x: [0.5, 1.5]}); overrides syllabus.llm.prices.PRICES")
    mode: Literal["online", "batch"] = Field("online", description="online requests, or the OpenAI Batch API "
                                                                   "(half price, results within 24 h)")
    batch_poll_s: float = Field(30.0, gt=0, description="seconds between polls of a Batch API batch")

    def client_options(self) -> dict[str, Any]:
        """LLMClient's keyword arguments for these settings."""
        return {"budget_usd": self.budget_usd, "prices": self.prices, "mode": self.mode,
                "batch_poll_s": self.batch_poll_s}
