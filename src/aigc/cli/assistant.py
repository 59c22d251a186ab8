"""`aigc assistant data|create|ask`: the customer-service assistant (assistant.py) - the generator's training
conversations from an index, an assistant put together from its parts, and answers from the command line."""

from __future__ import annotations

from pathlib import Path

EXAMPLES = """examples:
  aigc index build --data bitext --encoder runs/base --out runs/support-index
  aigc assistant data runs/support-index --out runs/support-chat.jsonl        # pairs with their retrieved context
  aigc train lm --data chat:runs/support-chat.jsonl --init runs/base --out runs/support-lm
  aigc train classifier --data bitext --init runs/base --out runs/intents
  aigc assistant create --generator runs/support-lm --index runs/support-index --intents runs/intents --out runs/support
  aigc assistant ask runs/support --text "I want to cancel order 12345"
  aigc serve support=runs/support                                             # POST /v1/chat/completions
"""


def register(commands) -> None:
    from aigc.cli.options import add_command

    parser = add_command(commands, "assistant", "a customer-service assistant: intent, retrieval, replies", EXAMPLES)
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    data = actions.add_parser("data", help="the indexed pairs as chat rows with their retrieved context (.jsonl)")
    data.add_argument("index", type=Path, help="an index directory (aigc index build)")
    data.add_argument("--answers", type=int, default=1, help="retrieved pairs placed in each prompt (default 1)")
    data.add_argument("--out", type=Path, required=True, help="the .jsonl to write (for --data chat:FILE)")
    create = actions.add_parser("create", help="put an assistant together from a generator, an index, intents")
    create.add_argument("--generator", type=Path, required=True, help="an lm run fine-tuned on aigc assistant data")
    create.add_argument("--index", type=Path, required=True, help="the index it retrieves from")
    create.add_argument("--intents", type=Path, help="a classifier run of the index's intents (default: neighbours)")
    create.add_argument("--answers", type=int, default=1, help="retrieved pairs placed in each prompt (default 1)")
    create.add_argument("--out", type=Path, required=True, help="the assistant directory to write")
    ask = actions.add_parser("ask", help="the assistant's reply to customer messages")
    ask.add_argument("assistant", type=Path, help="an assistant directory (aigc assistant create)")
    ask.add_argument("--text", action="append", required=True, help="a customer message (repeatable)")
    ask.add_argument("--seed", type=int, default=0, help="the first seed; message i uses seed + i (default 0)")
    ask.add_argument("--max-tokens", type=int, default=None, help="longest reply (default: the generator's)")
    ask.add_argument("--json", action="store_true", help="one JSON object per message")
    parser.set_defaults(run=run)


def run(args) -> int:
    from aigc import assistant
    from aigc.retrieval.index import Index

    if args.action == "data":
        rows = assistant.training_rows(Index.load(args.index), args.answers)
        write_rows(rows, args.out)
        print(f"wrote {len(rows):,} conversations to {args.out}; train on them with --data chat:{args.out}")
        return 0
    if args.action == "create":
        manifest = assistant.create(args.out, args.generator, args.index, args.intents, args.answers)
        source = "the classifier" if manifest.get("intents") else "the nearest pair"
        print(f"assistant in {args.out}: intents by {source}, {args.answers} retrieved answer(s) in each prompt")
        return 0
    return ask(args)


def write_rows(rows: list[dict], out: Path) -> None:
    import json

    from aigc.core.errors import UserError
    from aigc.core.io import atomic_write_text

    try:
        atomic_write_text(out, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    except OSError as error:
        raise UserError(f"cannot write {out} ({error.strerror}); choose a writable --out") from None


def ask(args) -> int:
    import json

    from aigc import assistant
    from aigc.core.errors import UserError
    from aigc.families.registry import family_of, with_sample

    if not all(text.strip() for text in args.text):
        raise UserError("--text is empty; give the customer's message")
    helper, model, config, _ = assistant.load(args.assistant)
    family = family_of(config)
    if args.max_tokens is not None:
        config = with_sample(config, {"max_tokens": args.max_tokens})
    contexts = helper.contexts(args.text)  # retrieved and classified together
    prompts = [
        family.chat_prompt(config, assistant.prompted([{"role": "user", "content": text}], c.intent, c.hits))
        for text, c in zip(args.text, contexts, strict=True)
    ]
    seeds = [args.seed + i for i in range(len(prompts))]
    replies = family.generate(model, seeds, prompts, config.sample)
    for text, context, reply in zip(args.text, contexts, replies, strict=True):
        if args.json:
            print(json.dumps({"text": text, **context.extension(), "reply": reply.text}, ensure_ascii=False))
        else:
            retrieved = ", ".join(f"#{i}" for i in context.extension()["retrieved"]) or "none"
            print(f"> {text}\n[intent {context.intent} ({context.source}); retrieved {retrieved}]\n{reply.text}\n")
    return 0
