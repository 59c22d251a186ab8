"""`aigc data list`: the image data sets and text corpora, where they are looked for, and whether they are present."""

from __future__ import annotations

EXAMPLES = """examples:
  aigc data list
  aigc data list --data-dir ~/datasets
"""


def register(commands) -> None:
    from aigc.cli.options import add_command

    parser = add_command(commands, "data", "list data sets", EXAMPLES)
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = add_command(actions, "list", "data sets, search locations, presence", EXAMPLES)
    listing.add_argument("--data-dir", help="an extra root to search first")
    listing.set_defaults(run=run_list)


def run_list(args) -> int:
    from aigc.data.datasets import describe_datasets
    from aigc.data.text import describe_text_datasets

    for row in describe_datasets(args.data_dir) + describe_text_datasets(args.data_dir):
        status = "present" if row["present"] else "missing: " + ", ".join(row["missing"])
        print(f"{row['name']:<14} {row['description']}")
        print(f"{'':<14} {status}")
        print(f"{'':<14} looked for in: {' | '.join(row['locations'])}")
    print("folder:PATH    any directory of png/jpg/webp/bmp images (classes from first-level sub-folders)")
    print('text:PATH      a UTF-8 .txt file, a folder of them, or a .jsonl with a "text" field')
    return 0
