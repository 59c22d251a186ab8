"""The one exception type that means "the user asked for something we cannot do".

The CLI prints it as a single `error: ...` line and exits with status 2; anything else is a bug
and keeps its traceback.
"""


class UserError(ValueError):
    """A problem with user input (a flag, a file, a request): the message says what and how to fix it."""


class Diverged(UserError):
    """Training produced a non-finite loss or a collapsed discriminator. `intact`: no update of the failing step
    was applied, so the weights in memory are the state before it (the loop then checkpoints them)."""

    def __init__(self, message: str, intact: bool = True):
        super().__init__(message)
        self.intact = intact


def check_finite(name: str, loss, step: int, intact: bool = True) -> float:
    """The loss (a scalar tensor) as a float, read from the device once; Diverged when it is NaN or infinite."""
    value = loss.item()
    if value != value or value in (float("inf"), float("-inf")):
        raise Diverged(f"{name} became {value} at step {step}", intact)
    return value
