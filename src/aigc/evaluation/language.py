"""Scoring a language model: its loss on the whole validation split of a text (in nats per token, bits per
byte and perplexity), and, on completions it generates, distinct-2 and the longest span copied verbatim from
the training split. `aigc eval` on an lm run and the training loop call this."""

from __future__ import annotations

import dataclasses
import math
import time

import torch
import torch.nn.functional as F

from aigc.data.chat import ChatFormat, chat_examples, chat_splits, chat_text, is_chat
from aigc.data.text import Corpus, read_corpus, token_ids
from aigc.evaluation.text import bits_per_byte, distinct_n, longest_copy, validation_loss

LOSS_METRICS = ("val_loss", "bits_per_byte", "perplexity")
SAMPLE_METRICS = ("distinct_2", "max_copy_chars")
TEXT_METRICS = LOSS_METRICS + SAMPLE_METRICS
DEFAULT_COMPLETIONS = 16


def loss_report(model, tokenizer, text: str, stride: int | None, limit: int | None = None) -> dict:
    """The loss metrics of `model` (which reads `tokenizer`'s tokens) on `text` (its first `limit` tokens when
    given), in windows of the model's context starting every `stride` tokens (default: the context, so windows
    do not overlap and each token is scored after 0..context-1 others, as nanoGPT's estimate scores them)."""
    ids = token_ids(text, tokenizer)
    scored_text = text
    if limit is not None and len(ids) > limit:
        ids = ids[:limit]
        scored_text = tokenizer.decode(ids.tolist())
    context = model.context
    stride = stride or context
    nats, tokens = validation_loss(model, ids, context, min(stride, context))
    return {
        "val_loss": nats,
        "bits_per_byte": bits_per_byte(nats, len(ids), len(scored_text.encode())),
        "perplexity": math.exp(nats),
        "tokens_scored": tokens,
        "context": context,
        "stride": min(stride, context),
    }


@torch.no_grad()
def chat_loss_report(model, tokenizer, chat: ChatFormat, rows: list[dict], batch_size: int = 16) -> dict:
    """The loss metrics of `model` on conversations, over the tokens a fine-tune learns (the assistant's, or a
    completion's), each conversation cut to the model's context; bits per byte over those tokens' text."""
    examples = chat_examples(tokenizer, chat, rows, model.context)
    device = next(model.parameters()).device
    nats, tokens, text_bytes = 0.0, 0, 0
    for first in range(0, len(examples), batch_size):
        batch = examples[first : first + batch_size].to(device)
        ids, counted = batch[:, 0].long(), batch[:, 1, 1:].bool()
        logits = model(ids[:, :-1]).float()
        losses = F.cross_entropy(logits.transpose(1, 2), ids[:, 1:], reduction="none")
        nats += losses[counted].sum().item()
        tokens += int(counted.sum())
        text_bytes += sum(
            len(tokenizer.decode(row[mask].tolist()).encode()) for row, mask in zip(ids[:, 1:], counted, strict=True)
        )
    loss = nats / tokens
    return {
        "val_loss": loss,
        "bits_per_byte": bits_per_byte(loss, tokens, max(text_bytes, 1)),
        "perplexity": math.exp(loss),
        "tokens_scored": tokens,
        "context": model.context,
        "conversations": len(examples),
    }


def sample_report(family, model, corpus: Corpus, sample, seeds: range, names) -> dict:
    """distinct-2 and the longest verbatim copy from the training split, over completions of a newline."""
    texts = [completion.text for completion in family.generate(model, list(seeds), sample=sample)]
    report: dict = {"completions": len(texts), "seeds": f"{seeds.start}-{seeds.stop - 1}"}
    if "distinct_2" in names:
        report["distinct_2"] = distinct_n(texts, 2)
    if "max_copy_chars" in names:
        report["max_copy_chars"] = max(longest_copy(t, corpus.train) for t in texts)
    return report


def evaluate_language_model(model, run_config, config, names: tuple[str, ...]) -> dict:
    """The report of `aigc eval` on a language model: `config` is the EvalConfig (its data set, default the
    run's; `n` completions; `stride`), `names` the metrics asked for."""
    from aigc.families.registry import family_of

    started = time.perf_counter()
    family = family_of(run_config)
    tokenizer = family.tokenizer(model)
    name = config.data or run_config.data.name
    data = dataclasses.replace(run_config.data, name=name, data_dir=config.data_dir or run_config.data.data_dir)
    report: dict = {"reference": f"{name}/validation"}
    wanted = set(names) & set(LOSS_METRICS)
    if is_chat(name):
        chat = ChatFormat.of(run_config)
        train_rows, validation_rows = chat_splits(name, data.data_dir)
        corpus = Corpus(chat_text(chat, train_rows), chat_text(chat, validation_rows))
        losses = chat_loss_report(model, tokenizer, chat, validation_rows) if wanted else {}
    else:
        corpus = read_corpus(data)
        losses = loss_report(model, tokenizer, corpus.validation, config.stride) if wanted else {}
    report.update({k: v for k, v in losses.items() if k not in LOSS_METRICS or k in names})
    if set(names) & set(SAMPLE_METRICS):
        n = config.n or DEFAULT_COMPLETIONS
        seeds = range(config.seed, config.seed + n)
        report.update(sample_report(family, model, corpus, run_config.sample, seeds, names))
        report["sampling"] = {k: v for k, v in dataclasses.asdict(run_config.sample).items() if k != "stop"}
    report["seconds"] = round(time.perf_counter() - started, 2)
    return report


class TextInLoopEvaluator:
    """The validation loss of a language model during training, on the first `eval_n` tokens of the run's
    validation split."""

    def __init__(self, config):
        from aigc.families.registry import family_of

        self.family = family_of(config)
        self.limit = config.train.eval_n
        if is_chat(config.data.name):
            self.chat = ChatFormat.of(config)
            self.rows = chat_splits(config.data.name, config.data.data_dir)[1]
        else:
            self.chat, self.text = None, read_corpus(config.data).validation

    @torch.no_grad()
    def __call__(self, model, sample) -> dict:
        started = time.perf_counter()
        was_training = model.training
        model.eval()
        tokenizer = self.family.tokenizer(model)
        try:
            if self.chat is None:
                losses = loss_report(model, tokenizer, self.text, None, self.limit)
            else:
                losses = chat_loss_report(model, tokenizer, self.chat, self.rows)
        finally:
            model.train(was_training)
        seconds = time.perf_counter() - started
        return {"val_loss": losses["val_loss"], "bits_per_byte": losses["bits_per_byte"], "eval_seconds": seconds}
