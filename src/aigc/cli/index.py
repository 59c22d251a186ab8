"""`aigc index build` and `aigc index query`: a search index of question-answer pairs (retrieval/index.py), built
from a data set's training split and queried with texts."""

from __future__ import annotations

import sys
from pathlib import Path

EXAMPLES = """examples:
  aigc index build --data bitext --out runs/support-index          # BM25 over the training split's questions
  aigc index build --data bitext --encoder runs/lm --out runs/fused  # and dense vectors of an lm run, fused
  aigc index build --data csv:faq.csv --question-column q --answer-column a --out runs/faq-index
  aigc index query runs/support-index --text "I want my money back" --k 3
  aigc index query runs/support-index --text "cancel order 12345" --json
"""


def register(commands) -> None:
    from aigc.cli.options import add_command

    parser = add_command(commands, "index", "build and query a search index of question-answer pairs", EXAMPLES)
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    build = actions.add_parser("build", help="index a data set's pairs (its training split)")
    build.add_argument("--data", default="bitext", help="question-answer pairs: bitext (default), csv:PATH, jsonl:PATH")
    build.add_argument("--data-dir", default=None, help="where the data sets are (default: AIGC_DATA_DIR, ...)")
    build.add_argument("--question-column", default="question", help="csv:/jsonl: the question's field (question)")
    build.add_argument("--answer-column", default="answer", help="csv:/jsonl: the answer's field (answer)")
    build.add_argument("--intent-column", help="csv:/jsonl: the intent's field (default: intent, if there is one)")
    build.add_argument("--delimiter", default=",", help="csv: the character between fields (,)")
    build.add_argument("--split", default="train", help="the split indexed (default: train; the others hold out)")
    build.add_argument("--encoder", type=Path, help="an lm run whose states also index the questions (dense)")
    build.add_argument("--out", type=Path, required=True, help="the index directory to write")
    query = actions.add_parser("query", help="the pairs whose questions best match texts")
    query.add_argument("index", type=Path, help="an index directory (aigc index build)")
    query.add_argument("--text", action="append", required=True, help="a text to look up (repeatable)")
    query.add_argument("--k", type=int, default=5, help="pairs per text (default 5)")
    query.add_argument("--json", action="store_true", help="one JSON object per text")
    parser.set_defaults(run=run)


def run(args) -> int:
    from aigc.core.errors import UserError
    from aigc.data.support import Columns, read_pairs
    from aigc.retrieval.index import Index

    if args.action == "build":
        if len(args.delimiter) != 1:
            raise UserError(f"--delimiter {args.delimiter!r}: give one character, e.g. ';'")
        columns = Columns(args.question_column, args.answer_column, args.intent_column, args.delimiter)
        splits = read_pairs(args.data, args.data_dir, columns)
        if args.split not in splits:
            raise UserError(f"--split {args.split}: {args.data} has the splits {', '.join(splits)}")
        index = Index.build(splits[args.split], f"{args.data}/{args.split}", args.encoder)
        index.save(args.out)
        kind = "BM25 and dense vectors" if index.dense else "BM25"
        print(f"indexed {len(index.pairs):,} pairs of {index.source} in {args.out} ({kind})")
        return 0
    if args.k < 1:
        raise UserError(f"--k {args.k}: give 1 or more")
    texts = [text for text in args.text if text.strip()]
    if len(texts) < len(args.text):
        raise UserError("--text is empty; give the words to look up")
    for text, hits in zip(texts, Index.load(args.index).query(texts, args.k), strict=True):
        show(text, hits, args.json)
    return 0


def show(text: str, hits, as_json: bool) -> None:
    import json

    if as_json:
        found = [{"rank": h.rank, "score": h.score, "scores": h.scores, "id": h.pair.id, "intent": h.pair.intent,
                  "question": h.pair.question, "answer": h.pair.answer} for h in hits]  # fmt: skip
        print(json.dumps({"text": text, "hits": found}, ensure_ascii=False))
        return
    print(f"{text}")
    for h in hits:
        first = h.pair.answer.splitlines()[0] if h.pair.answer else ""
        parts = " ".join(f"{name} {value:.2f}" for name, value in h.scores.items())
        print(
            f"  {h.rank}. {h.score:6.3f} ({parts})  #{h.pair.id} [{h.pair.intent}] {h.pair.question}  ->  {first[:60]}"
        )
    sys.stdout.flush()
