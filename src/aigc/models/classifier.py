"""A text classifier on the decoder-only transformer: the hidden states of a text, pooled into one vector, and a
linear `score` to one logit per class.

Pooling suits a decoder: under causal attention only the last position has read the whole text, so `last`
(transformers' `LlamaForSequenceClassification` pools so) takes the last token's state; `mean` averages every
position's, each of which has read a prefix. Texts are right-padded: a position never attends to a later one, so
padding changes no real token's state and needs no mask. Weight names are transformers' Llama names (`model.*`,
`score.weight`), the names of `LlamaForSequenceClassification`.

Its probabilities are the softmax of the logits divided by a temperature (Guo et al. 2017), a buffer held with
the weights: 1 until one is fitted on held-out texts (`fit_temperature`), so a checkpoint's probabilities are
calibrated as it was.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from aigc.models.transformer import Decoder, TransformerConfig, initialize

Pooling = Literal["last", "mean"]


class SequenceClassifier(nn.Module):
    def __init__(self, config: TransformerConfig, classes: int, pooling: Pooling):
        super().__init__()
        self.config, self.pooling = config, pooling
        self.model = Decoder(config)
        self.score = nn.Linear(config.width, classes, bias=False)
        self.register_buffer("temperature", torch.ones(()))
        self.apply(initialize)  # as the language model starts

    @property
    def context(self) -> int:
        return self.config.context

    def head(self) -> nn.Module:
        return self.score

    def embedding(self) -> nn.Module:
        return self.model.embed_tokens

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Logits [N, classes] of texts `tokens` [N, T] (right-padded), row i's first lengths[i] tokens real."""
        return self.score(self.pooled(tokens, lengths))

    def pooled(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """One vector [N, width] per text."""
        hidden = self.model(tokens)
        lengths = lengths.to(hidden.device)
        if self.pooling == "last":
            return hidden[torch.arange(len(tokens), device=hidden.device), lengths - 1]
        return mean_of_real(hidden, lengths)


def mean_of_real(hidden: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """The mean [N, width] of each row's first lengths[i] states of `hidden` [N, T, width] (right-padded); a row
    of none is the zero vector."""
    real = (torch.arange(hidden.shape[1], device=hidden.device) < lengths[:, None]).to(hidden.dtype)
    return (hidden * real[..., None]).sum(1) / lengths.clamp(min=1)[:, None].to(hidden.dtype)


TEMPERATURES = (0.05, 20.0)  # a fitted temperature's range: texts all classified right would drive it to 0


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """The temperature T that minimises the negative log-likelihood of softmax(logits / T) for `labels` (Guo et
    al. 2017), by L-BFGS over log T, within TEMPERATURES."""
    log_t = torch.zeros((), requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=0.1, max_iter=200, line_search_fn="strong_wolfe")
    logits = logits.detach().float()

    def nll() -> torch.Tensor:
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(logits / log_t.exp(), labels)
        loss.backward()
        return loss

    optimizer.step(nll)
    low, high = TEMPERATURES
    return min(high, max(low, float(log_t.detach().exp())))
