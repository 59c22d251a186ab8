"""The reference of the language-model benchmark: nanoGPT's CPU recipe for shakespeare_char (its README's "I only
have a macbook" settings: 4 layers, 4 heads, width 128, context 64, batch 12, no biases, dropout 0; AdamW lr
1e-3, betas (0.9, 0.99), weight decay 0.1 on matrices, 100 warm-up iterations, cosine decay to 1e-4 over the
run, gradient clip 1.0), re-implemented in plain torch as nanoGPT's model.py defines the network: learned
positions, LayerNorm, GELU MLP of 4x width, tied embeddings, init N(0, 0.02) with the residual projections
scaled by 1/sqrt(2 * layers), and random window offsets per iteration as its get_batch draws them.

Run as a script it trains once and writes a JSON line (so that its peak memory is its own process's):
    python benchmarks/reference_nanogpt.py --iters 2000 --out ref.json   # nanoGPT's own iteration count
    python benchmarks/reference_nanogpt.py --minutes 10 --out ref.json   # iterations fitted to 10 minutes
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class Recipe:
    layers: int = 4
    heads: int = 4
    width: int = 128
    context: int = 64
    batch: int = 12
    lr: float = 1e-3
    min_lr: float = 1e-4
    warmup: int = 100
    weight_decay: float = 0.1
    betas: tuple = (0.9, 0.99)
    grad_clip: float = 1.0


class Block(nn.Module):
    def __init__(self, r: Recipe):
        super().__init__()
        self.heads = r.heads
        self.ln_1, self.ln_2 = nn.LayerNorm(r.width, bias=False), nn.LayerNorm(r.width, bias=False)
        self.c_attn = nn.Linear(r.width, 3 * r.width, bias=False)
        self.attn_proj = nn.Linear(r.width, r.width, bias=False)
        self.c_fc = nn.Linear(r.width, 4 * r.width, bias=False)
        self.mlp_proj = nn.Linear(4 * r.width, r.width, bias=False)

    def forward(self, x):
        n, t, c = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(c, dim=2)
        q, k, v = (z.view(n, t, self.heads, c // self.heads).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(n, t, c)
        x = x + self.attn_proj(y)
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x))))


class GPT(nn.Module):
    def __init__(self, r: Recipe, vocab_size: int):
        super().__init__()
        self.recipe = r
        self.wte, self.wpe = nn.Embedding(vocab_size, r.width), nn.Embedding(r.context, r.width)
        self.blocks = nn.ModuleList(Block(r) for _ in range(r.layers))
        self.ln_f = nn.LayerNorm(r.width, bias=False)
        self.lm_head = nn.Linear(r.width, vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight
        for name, p in self.named_parameters():
            if p.ndim == 2:
                std = 0.02 / math.sqrt(2 * r.layers) if name.endswith("proj.weight") else 0.02
                nn.init.normal_(p, std=std)

    def forward(self, tokens, cache=None):  # `cache`: the decoding loop's argument; this model keeps none
        x = self.wte(tokens) + self.wpe(torch.arange(tokens.shape[1]))
        for block in self.blocks:
            x = block(x)
        return self.lm_head(self.ln_f(x))


def learning_rate(r: Recipe, iteration: int, iterations: int) -> float:
    """nanoGPT's get_lr with lr_decay_iters = the run's iterations."""
    if iteration < r.warmup:
        return r.lr * (iteration + 1) / (r.warmup + 1)
    ratio = min(1.0, (iteration - r.warmup) / max(1, iterations - r.warmup))
    return r.min_lr + 0.5 * (1 + math.cos(math.pi * ratio)) * (r.lr - r.min_lr)


def train(train_ids: torch.Tensor, vocab_size: int, iterations: int, seed: int = 1337, log_every: int = 100):
    """(model, log rows, seconds): `iterations` steps of the recipe; log rows hold the train loss and time."""
    r = Recipe()
    torch.manual_seed(seed)
    model = GPT(r, vocab_size)
    decay = [p for p in model.parameters() if p.ndim >= 2]
    rest = [p for p in model.parameters() if p.ndim < 2]
    groups = [{"params": decay, "weight_decay": r.weight_decay}, {"params": rest, "weight_decay": 0.0}]
    optimizer = torch.optim.AdamW(groups, lr=r.lr, betas=r.betas)
    offsets = torch.arange(r.context + 1)
    rows, seconds, loss_sum, count = [], 0.0, 0.0, 0
    for iteration in range(iterations):
        started = time.perf_counter()
        starts = torch.randint(len(train_ids) - r.context - 1, (r.batch,))
        windows = train_ids[starts[:, None] + offsets]
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(r, iteration, iterations)
        logits = model(windows[:, :-1])
        loss = F.cross_entropy(logits.flatten(0, 1), windows[:, 1:].flatten())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), r.grad_clip)
        optimizer.step()
        seconds += time.perf_counter() - started
        loss_sum, count = loss_sum + loss.item(), count + 1
        if (iteration + 1) % log_every == 0:
            rows.append({"iteration": iteration + 1, "train_seconds": seconds, "loss": loss_sum / count})
            loss_sum, count = 0.0, 0
    return model, rows, seconds


def main() -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).parents[1] / "src"))
    from aigc.data.text import TextDataConfig, read_corpus
    from aigc.data.tokenizer import TextTokenizer
    from aigc.evaluation.text import validation_loss

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iters", type=int, help="train this many iterations")
    parser.add_argument("--minutes", type=float, help="fit the iterations to this budget (timed over 200 first)")
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--out", type=Path, required=True, help="JSON of the run; the weights beside it (.pt)")
    parser.add_argument("--seed", type=int, default=1337, help="of initialisation and batches (nanoGPT's default)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    corpus = read_corpus(TextDataConfig(name="shakespeare", data_dir=args.data_dir))
    tokenizer = TextTokenizer.train("char", corpus.train + corpus.validation)
    train_ids = torch.tensor(tokenizer.encode(corpus.train))
    iterations = args.iters
    if args.minutes:
        _, _, seconds = train(train_ids, tokenizer.vocab_size, 200, args.seed, log_every=10**9)
        iterations = int(args.minutes * 60 / (seconds / 200))
    model, rows, seconds = train(train_ids, tokenizer.vocab_size, iterations, args.seed)
    model.eval()
    model.context = model.recipe.context  # what aigc's decoding reads
    val_ids = tokenizer.encode(corpus.validation)
    import numpy as np

    loss, scored = validation_loss(model, np.asarray(val_ids), model.recipe.context, model.recipe.context)
    result = {
        "iterations": iterations,
        "train_seconds": seconds,
        "tokens_per_s": iterations * Recipe.batch * Recipe.context / seconds,
        "val_loss": loss,
        "tokens_scored": scored,
        "parameters": sum(p.numel() for p in model.parameters()),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "curve": rows,
    }
    torch.save(model.state_dict(), args.out.with_suffix(".pt"))
    args.out.write_text(json.dumps(result) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "curve"}))


if __name__ == "__main__":
    main()
