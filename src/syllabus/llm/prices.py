"""What tokens cost: one editable table, USD per million tokens by model-name prefix.

    price_of("gpt-4o-mini-2024-07-18")            -> Price(input=0.15, output=0.6, batch_discount=0.5)
    price_of("my-model", {"my-model": Price(1, 2)}) -> the override (e.g. from a recipe)
    price_of("my-model")                           -> None: unknown, which is not the same as free

A recipe or CLI overrides rows with `prices:`, either one price for the stage's model (`[0.5, 1.5]`,
input and output USD per million tokens) or a table by model-name prefix (`{my-model: [1, 2],
gpt-4o: {input: 2.5, output: 10, batch_discount: 0.5}}`); `price_table` reads both.

A batch API (OpenAI's, Anthropic's) bills half the interactive price; `Price.batch()` is that price,
and a model whose batch discount differs says so in its row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Union


@dataclass(frozen=True)
class Price:
    """USD per million tokens."""

    input: float
    output: float
    batch_discount: float = 0.5  # the batch price is this fraction of the interactive one

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.input + completion_tokens * self.output) / 1e6

    def batch(self) -> Price:
        return Price(self.input * self.batch_discount, self.output * self.batch_discount, 1.0)

    @property
    def free(self) -> bool:
        return self.input == 0 and self.output == 0


FREE = Price(0.0, 0.0)

PRICES: dict[str, Price] = {
    "gpt-3.5-turbo": Price(0.50, 1.50),
    "gpt-4o-mini": Price(0.15, 0.60),
    "gpt-4o": Price(2.50, 10.00),
    "gpt-4.1-mini": Price(0.40, 1.60),
    "gpt-4.1": Price(2.00, 8.00),
    "gpt-4": Price(30.00, 60.00),
}


def price_of(model: str, overrides: Mapping[str, Price] | None = None) -> Price | None:
    """The price of `model`: the longest matching name prefix of `overrides`, else of PRICES;
    None when neither names it (unknown, not free)."""
    for table in (overrides or {}, PRICES):
        names = [name for name in table if model.startswith(name)]
        if names:
            return table[max(names, key=len)]
    return None


# what a recipe or the CLI writes for one price: [input, output], [input, output, batch_discount], or a mapping
PriceSpec = Union[tuple[float, float], tuple[float, float, float], dict[str, float]]


def to_price(spec: Price | PriceSpec | Sequence[float]) -> Price:
    if isinstance(spec, Price):
        return spec
    if isinstance(spec, Mapping):
        return Price(**spec)
    return Price(*spec)


def price_table(model: str, prices: Price | PriceSpec | Mapping[str, PriceSpec] | None) -> dict[str, Price]:
    """The overrides `prices` names: a table by model-name prefix, or one price meaning `model`'s."""
    if not prices:
        return {}
    if isinstance(prices, Mapping) and not set(prices) <= {"input", "output", "batch_discount"}:
        return {name: to_price(spec) for name, spec in prices.items()}
    return {model: to_price(prices)}
