"""`aigc data list`: the data sets, where they are looked for, and whether they are present."""

from __future__ import annotations

EXAMPLES = """examples:
  aigc data list
  aigc data list --data-dir ~/datasets
"""


def register(commands) -> None:
    import argparse

    parser = commands.add_parser(
        "data", help="list data sets", epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser(
        "list",
        help="data sets, search locations, presence",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    listing.add_argument("--data-dir", help="an extra root to search first")
    listing.set_defaults(run=run_list)


def run_list(args) -> int:
    from aigc.data.datasets import describe_datasets

    for row in describe_datasets(args.data_dir):
        status = "present" if row["present"] else "missing: " + ", ".join(row["missing"])
        print(f"{row['name']:<14} {row['description']}")
        print(f"{'':<14} {status}")
        print(f"{'':<14} looked for in: {' | '.join(row['locations'])}")
    print("folder:PATH    any directory of png/jpg/webp/bmp images (classes from first-level sub-folders)")
    return 0
