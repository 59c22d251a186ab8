"""A sequential recommender - SASRec (Kang & McAuley 2018): a causal transformer reads a user's liked items, oldest
first, and its last state scores every item as the next one by a dot product with the item's vector - on aigc's
transformer, with item vectors that come from the items' text as well as from their ids.

An item's vector is the sum of two parts (`representation` chooses which it has):
- `id`: a vector learnt for the item (the transformer's embedding table, row i for item i), which exists only
  for items the training histories hold (`known`); any other item's is zero.
- `text`: a small MLP of the item's text vector (`features`: a language model's mean last-layer state of its
  title, genres and tags, computed once when the run starts and kept here), so an item no one has liked yet -
  a cold item - still has a vector, and items of like text start close.
With both, training drops each item's id part at random (`--id-dropout`, as DropoutNet, Volkovs et al. 2017,
trains for cold start), so the model learns to rank an item by its text alone when it has no id vector.

Histories are right-padded with item 0: under causal attention no real position ever sees the padding.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from aigc.models.transformer import Decoder, TransformerConfig, initialize

Representation = Literal["id+text", "id", "text"]
UNSCORED = float("-inf")  # the score of what a model cannot recommend: padding, an item it has no vector for


class SequentialRecommender(nn.Module):
    def __init__(self, config: TransformerConfig, features: int, representation: Representation):
        """`config.vocab_size`: the items + 1 (the padding); `features`: the width of the items' text vectors."""
        super().__init__()
        self.config, self.representation = config, representation
        self.model = Decoder(config)  # its embedding table holds the id vectors
        self.text = None
        if "text" in representation:
            self.text = nn.Sequential(
                nn.Linear(features, config.width), nn.GELU(), nn.Linear(config.width, config.width)
            )
        self.register_buffer("features", torch.zeros(config.vocab_size, features))
        self.register_buffer("known", torch.zeros(config.vocab_size, dtype=torch.bool))
        self.apply(initialize)

    @property
    def context(self) -> int:
        """The most history items it reads (the newest)."""
        return self.config.context

    @property
    def items(self) -> int:
        return self.config.vocab_size - 1

    def vectors(self, dropped: torch.Tensor | None = None) -> torch.Tensor:
        """Every item's vector [items + 1, width]; `dropped` (bool [items + 1]): items whose id part is left out."""
        vectors = torch.zeros(self.config.vocab_size, self.config.width, device=self.features.device)
        if "id" in self.representation:
            has_id = self.known if dropped is None else self.known & ~dropped
            vectors = vectors + self.model.embed_tokens.weight * has_id[:, None].to(vectors.dtype)
        if self.text is not None:
            vectors = vectors + self.text(self.features)
        return vectors

    def scorable(self) -> torch.Tensor:
        """bool [items + 1]: the items it can rank (every item with text; with ids only, those it learnt)."""
        every = torch.ones_like(self.known) if self.text is not None else self.known.clone()
        every[0] = False
        return every

    def states(self, histories: torch.Tensor, vectors: torch.Tensor) -> torch.Tensor:
        """The transformer's states [N, T, width] after each item of `histories` [N, T] (right-padded with 0)."""
        return self.model.transform(vectors[histories])

    def forward(self, histories: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Scores [N, items + 1] of every item as the next after row i's first lengths[i] items of `histories`;
        what it cannot rank scores -inf."""
        vectors = self.vectors()
        states = self.states(histories, vectors)
        last = states[torch.arange(len(histories), device=states.device), lengths.to(states.device) - 1]
        scores = last @ vectors.T
        return scores.masked_fill(~self.scorable(), UNSCORED)

    def influence(self, history: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """How much each item of `history` [T] (at most the context) weighs in the scores of `items` [K]: [K, T],
        the drop of each score when that one history item is left out (a history of one item: the scores)."""
        n = len(history)
        if n == 1:
            return self(history[None], torch.ones(1, dtype=torch.long))[0, items][:, None]
        kept = ~torch.eye(n, dtype=torch.bool, device=history.device)
        without = history.expand(n, n)[kept].view(n, n - 1)  # row j: the history but its item j
        rows = torch.cat([history[None], nn.functional.pad(without, (0, 1))])
        lengths = torch.tensor([n] + [n - 1] * n)
        scores = self(rows, lengths)[:, items]
        return (scores[0] - scores[1:]).T
