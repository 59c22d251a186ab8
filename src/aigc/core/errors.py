"""The exceptions the CLI turns into one `error: ...` line: UserError ("the user asked for something we cannot
do", exit status 2; ConfigError is the one a config field raises) and LostProcesses (a torchrun job lost one of
its processes, exit status 1). Anything else is a bug and keeps its traceback.
"""

import math


class UserError(ValueError):
    """A problem with user input (a flag, a file, a request): the message says what and how to fix it."""


class ConfigError(UserError):
    """A config field holds a value it cannot take; `field` names it (the service answers 422 with it)."""

    def __init__(self, field: str, value, problem: str):
        super().__init__(f"{field} = {value!r}: {problem}")
        self.field = field


class LostProcesses(RuntimeError):
    """A process of a torchrun job failed to hear from the others (one died, or a collective timed out)."""


class Diverged(UserError):
    """Training produced a non-finite loss or a collapsed discriminator. `intact`: no update of the failing step
    was applied, so the weights in memory are the state before it (the loop then checkpoints them)."""

    def __init__(self, message: str, intact: bool = True):
        super().__init__(message)
        self.intact = intact


def check_finite(name: str, loss: float, step: int, intact: bool = True) -> float:
    """The loss, or Diverged when it is NaN or infinite."""
    if not math.isfinite(loss):
        raise Diverged(f"{name} became {loss} at step {step}", intact)
    return loss
