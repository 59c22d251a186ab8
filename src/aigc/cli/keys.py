"""`aigc keys add FILE`: make an API key for `aigc serve --api-keys FILE`. The key is printed once; the file keeps
only its SHA-256 hash and a name, which is what the service's logs and rate limits know the caller by."""

from __future__ import annotations

from pathlib import Path

EXAMPLES = """examples:
  aigc keys add keys.txt --name alice       # prints the key; give it to alice, it is not stored anywhere
"""


def register(commands) -> None:
    from aigc.cli.options import add_command

    parser = add_command(commands, "keys", "make API keys for aigc serve", EXAMPLES)
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="append a new key's hash to FILE and print the key")
    add.add_argument("file", type=Path, help="key file (created when missing)")
    add.add_argument("--name", required=True, help="who the key is for (letters, digits, -, _, .)")
    parser.set_defaults(run=run)


def run(args) -> int:
    import os

    from aigc.core.errors import UserError
    from aigc.serving.access import hash_key, new_key, read_key_file
    from aigc.serving.settings import NAME

    if not NAME.match(args.name):
        raise UserError(f"--name {args.name!r}: use letters, digits, '-', '_' and '.'")
    if args.file.exists() and args.name in read_key_file(args.file).values():
        raise UserError(f"{args.file} already has a key named {args.name!r}; choose another --name")
    key = new_key()
    try:
        # owner-only from the start: the hashes are not secrets, but nobody else should be able to add a key
        fd = os.open(args.file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "a") as f:
            f.write(f"{hash_key(key)} {args.name}\n")
    except OSError as error:
        raise UserError(f"cannot write {args.file} ({error.strerror}); choose a writable path") from None
    print(key)
    return 0
