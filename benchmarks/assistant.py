"""The customer-service assistant on the Bitext set's held-out test split (452 requests, 27 intents), on this
machine: a byte-level BPE model pre-trained on the ten Gutenberg books, then

- a search index of the training pairs: BM25 (bm25s) alone, and fused with dense vectors of the pre-trained model;
- an intent classifier fine-tuned from the pre-trained model (`aigc train classifier --data bitext --init`);
- two generators fine-tuned from it for the same wall-clock time: on the plain conversations (request -> reply,
  `--data bitext`) and on the assistant's conversations (`aigc assistant data`: the intent and the nearest other
  pair in a system message first).

Measured on the test split: intent accuracy of the nearest retrieved pair (BM25, fused) and of the classifier;
chrF (sacrebleu), ROUGE-L (rouge-score) and the share of replies with well-formed placeholders for retrieval
only (the nearest pair's reply; the pair the classifier's intent chooses), the generator alone and the generator
with retrieval (the assistant); replies/s when all test requests are answered at once (one batch of the text
engine), and latency per reply and to the first token answering one request at a time, in process (no HTTP).
Six exchanges chosen by seed are kept for the docs. Replies are drawn with the generators' own sampling
defaults (temperature 0.8, top-k 200), seed = the request's position, at most MAX_TOKENS tokens and never past
the context (as the chat route ends a reply)."""

from __future__ import annotations

import json
import random
import statistics
import time
from pathlib import Path

from harness import RUNS, aigc, monitored

CONTEXT = 512  # BPE tokens: a request, one retrieved pair and the reply fit in most cases
PRETRAIN = ["--data", "gutenberg", "--tokenizer", "bpe", "--vocab-size", "2048", "--context", CONTEXT,
            "--batch", 8]  # fmt: skip
MAX_TOKENS = 400  # per reply; the longest Bitext replies are about 500 tokens
LATENCY_REQUESTS = 16
EXAMPLES = 6


def trained(*args) -> dict:
    """Run an `aigc train` command; its peak memory and the tokens or texts it saw."""
    _, memory = monitored("train", *args, "--overwrite", "--no-progress")
    out = Path(args[args.index("--out") + 1])
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    seen = {
        key: max(row[key] for row in rows if key in row) for key in ("tokens", "texts") if any(key in r for r in rows)
    }
    return {**seen, **memory}


def build(data_dir: str, pretrain_minutes: float, minutes: float, classifier_minutes: float) -> dict:
    """Train and index everything under runs/bench-assistant/; what each step saw and its memory."""
    root = RUNS / "bench-assistant"
    data = ["--data-dir", data_dir]
    steps = {"pretrain": trained("lm", *PRETRAIN, *data, "--minutes", pretrain_minutes, "--out", root / "base")}
    aigc("index", "build", "--data", "bitext", *data, "--out", root / "index-bm25")
    aigc("index", "build", "--data", "bitext", *data, "--encoder", root / "base", "--out", root / "index")
    aigc("assistant", "data", root / "index", "--out", root / "assistant-chat.jsonl")
    steps["classifier"] = trained("classifier", "--data", "bitext", *data, "--init", root / "base",
                                  "--minutes", classifier_minutes, "--out", root / "intents")  # fmt: skip
    steps["generator"] = trained("lm", "--data", "bitext", *data, "--init", root / "base", "--minutes", minutes,
                                 "--out", root / "generator")  # fmt: skip
    chat = f"chat:{root / 'assistant-chat.jsonl'}"
    steps["assistant generator"] = trained("lm", "--data", chat, "--init", root / "base", "--minutes", minutes,
                                           "--out", root / "rag-generator")  # fmt: skip
    aigc("assistant", "create", "--generator", root / "rag-generator", "--index", root / "index", "--intents",
         root / "intents", "--out", root / "assistant")  # fmt: skip
    return steps


def decoded(family, model, config, prompts: list[str], on_text=None) -> list:
    """The replies to `prompts` (seed i for prompt i), submitted at once to one text engine, each ending at
    MAX_TOKENS or where the context does, as the chat route ends them."""
    from aigc.families.registry import with_sample

    replies: list = [None] * len(prompts)
    requests = []
    for k, prompt in enumerate(prompts):
        room = CONTEXT - len(family.encode(model, prompt))
        sample = with_sample(config, {"max_tokens": min(MAX_TOKENS, room)}).sample
        requests += family.requests(
            model, [k], [prompt], sample, on_text, lambda i, reply, k=k: replies.__setitem__(k, reply)
        )
    model.eval()
    family.engine(model, min(64, len(prompts))).complete(requests)
    return replies


def answered(family, model, config, prompts: list[str]) -> tuple[list[str], float]:
    """The replies to `prompts` drawn at once, and the seconds it took."""
    started = time.perf_counter()
    replies = decoded(family, model, config, prompts)
    return [reply.text for reply in replies], time.perf_counter() - started


def one_at_a_time(family, model, config, prompt_of, questions: list[str]) -> dict:
    """Median seconds per reply and to its first token, answering one request after another (prompt_of(question)
    -> prompt is timed too: an assistant's retrieval and intent)."""
    whole, first = [], []
    for question in questions:
        started, heard = time.perf_counter(), []
        decoded(
            family, model, config, [prompt_of(question)], lambda k, text, heard=heard: heard.append(time.perf_counter())
        )
        whole.append(time.perf_counter() - started)
        first.append(heard[0] - started if heard else whole[-1])
    return {"seconds_per_reply": statistics.median(whole), "first_token_seconds": statistics.median(first)}


def system(replies: list[str], references: list[str], seconds: float | None = None) -> dict:
    from aigc.evaluation.replies import reply_scores

    timing = {} if seconds is None else {"seconds": seconds, "replies_per_s": len(replies) / seconds}
    return {**reply_scores(replies, references), **timing}


def evaluate(data_dir: str) -> dict:
    """Every measure of the module docstring, on the test split, and the example exchanges."""
    from aigc import assistant
    from aigc.data.support import read_pairs
    from aigc.families.registry import family_of, load_model
    from aigc.families.text import fitted_chat_prompt
    from aigc.retrieval.index import Index

    root = RUNS / "bench-assistant"
    test = read_pairs("bitext", data_dir)["test"]
    questions, references = [p.question for p in test], [p.answer for p in test]
    truth = [p.intent for p in test]

    def accuracy(intents) -> float:
        return sum(a == b for a, b in zip(intents, truth, strict=True)) / len(truth)

    nearest = {name: [hits[0].pair for hits in Index.load(root / path).query(questions, 1)]
               for name, path in (("bm25", "index-bm25"), ("fused", "index"))}  # fmt: skip
    helper, rag_model, rag_config, _ = assistant.load(root / "assistant")
    contexts = helper.contexts(questions)
    rag = family_of(rag_config)
    plain_model, plain_config = load_model(root / "generator")
    plain = family_of(plain_config)

    def assistant_prompt(question: str) -> str:  # as the chat route writes it
        messages = helper.prompt([{"role": "user", "content": question}])[0]
        return fitted_chat_prompt(rag, rag_model, rag_config, messages, CONTEXT)[0]

    def plain_prompt(question: str) -> str:
        return fitted_chat_prompt(plain, plain_model, plain_config, [{"role": "user", "content": question}], CONTEXT)[0]

    rag_prompts, plain_prompts = [assistant_prompt(q) for q in questions], [plain_prompt(q) for q in questions]
    plain_replies, plain_seconds = answered(plain, plain_model, plain_config, plain_prompts)
    rag_replies, rag_seconds = answered(rag, rag_model, rag_config, rag_prompts)
    chosen = [context.hits[0].pair.answer if context.hits else "" for context in contexts]
    sample = questions[:LATENCY_REQUESTS]

    return {
        "test_requests": len(test),
        "intent_accuracy": {
            "nearest pair (BM25)": accuracy([p.intent for p in nearest["bm25"]]),
            "nearest pair (BM25 + dense, fused)": accuracy([p.intent for p in nearest["fused"]]),
            "classifier": accuracy([c.intent for c in contexts]),
        },
        "replies": {
            "retrieval only: nearest pair (fused)": system([p.answer for p in nearest["fused"]], references),
            "retrieval only: the classifier's intent chooses": system(chosen, references),
            "generator alone": system(plain_replies, references, plain_seconds),
            "generator + retrieval (the assistant)": system(rag_replies, references, rag_seconds),
        },
        "one_at_a_time": {
            "generator alone": one_at_a_time(plain, plain_model, plain_config, plain_prompt, sample),
            "generator + retrieval (the assistant)": one_at_a_time(
                rag, rag_model, rag_config, assistant_prompt, sample
            ),
        },
        "examples": examples(test, contexts, nearest["fused"], plain_replies, rag_replies),
    }


def examples(test, contexts, nearest, plain_replies, rag_replies) -> list[dict]:
    chosen = sorted(random.Random(0).sample(range(len(test)), EXAMPLES))
    return [
        {
            "id": test[i].id,
            "request": test[i].question,
            "intent": test[i].intent,
            "reference": test[i].answer,
            "assistant_intent": contexts[i].intent,
            "retrieved": [hit.pair.id for hit in contexts[i].hits],
            "nearest_pair_reply": nearest[i].answer,
            "generator_alone": plain_replies[i],
            "assistant": rag_replies[i],
        }  # fmt: skip
        for i in chosen
    ]


def bench_assistant(pretrain_minutes: float, minutes: float, classifier_minutes: float, data_dir: str) -> dict:
    started = time.perf_counter()
    steps = build(data_dir, pretrain_minutes, minutes, classifier_minutes)
    results = evaluate(data_dir)
    return {
        "pretrain": {"flags": " ".join(map(str, PRETRAIN)), "minutes": pretrain_minutes},
        "generator_minutes": minutes,
        "classifier_minutes": classifier_minutes,
        "max_tokens": MAX_TOKENS,
        "training": steps,
        **results,
        "wall_minutes": (time.perf_counter() - started) / 60,
    }
