"""The one exception type that means "the user asked for something we cannot do".

The CLI prints it as a single `error: ...` line and exits with status 2; anything else is a bug
and keeps its traceback.
"""


class UserError(ValueError):
    """A problem with user input (a flag, a file, a request): the message says what and how to fix it."""
