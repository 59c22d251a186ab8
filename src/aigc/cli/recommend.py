"""`aigc recommend`: what a recommender run ranks highest for a user it knows (--user ID) or for a new one whose
liked items are named (--history "title; title"), each item with the history items that weighed most."""

from __future__ import annotations

import json
from pathlib import Path

EXAMPLES = """examples:
  aigc recommend runs/movielens-recommender --user 1
  aigc recommend runs/movielens-recommender --history "Heat (1995); Casino; Goodfellas (1990)" --k 5
  aigc recommend runs/movielens-recommender --user 1 --json
"""


def register(commands) -> None:
    from aigc.cli.options import add_command

    parser = add_command(commands, "recommend", "recommend items with a recommender", EXAMPLES)
    parser.add_argument("model", type=Path, help="recommender run directory (newest checkpoint) or checkpoint file")
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--user", help="a user id of the ratings the run trained on")
    who.add_argument("--history", help="a new user's liked items, oldest first: titles or item ids, ';' between")
    parser.add_argument("--k", type=int, help="items to recommend (default: the run's, 10)")
    parser.add_argument("--explain", type=int, help="history items listed with each (default: the run's, 3)")
    parser.add_argument("--json", action="store_true", help="one JSON object: the history and the items")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    parser.set_defaults(run=run)


def run(args) -> int:
    from aigc.core.device import resolve_device
    from aigc.core.errors import UserError
    from aigc.families.registry import family_of, load_model, with_sample

    model, config = load_model(args.model, resolve_device(args.device))
    family = family_of(config)
    if family.modality != "items":
        raise UserError(f"{args.model} is a {family.name} run, which generates {family.modality}; give a recommender")
    settings = {name: getattr(args, name) for name in ("k", "explain") if getattr(args, name) is not None}
    sample = with_sample(config, settings).sample
    if args.user is not None:
        history = family.history(model, args.user)
    else:
        history = family.items_named(model, [name for name in args.history.split(";") if name.strip()])
    family.check_request(model, [history], sample)
    (items,) = family.recommend(model, [history], sample)
    if args.json:
        liked = [family.item(model, i) for i in history]
        print(json.dumps({"user": args.user, "history": liked, "items": items}, ensure_ascii=False))
        return 0
    who = f"user {args.user}" if args.user is not None else "this history"
    print(f"for {who} ({len(history)} liked, the newest {family.item(model, history[-1])['title']}):")
    for rank, item in enumerate(items, 1):
        because = "; ".join(reason["title"] for reason in item["because"])
        print(f"{rank:3d}. {item['title']}  ({item['score']:.2f})" + (f"  because: {because}" if because else ""))
    return 0
