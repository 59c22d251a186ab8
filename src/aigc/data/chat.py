"""Chat and instruction data for fine-tuning (`--data chat:PATH`): a .jsonl whose rows are conversations,
`{"messages": [{"role": ..., "content": ...}, ...]}`, or prompt-completion pairs, `{"prompt": ..., "completion":
...}`.

A conversation is rendered with a chat template - Jinja, rendered as transformers renders it - the tokenizer's own
when it has one, else a ChatML-style default whose turn markers become special tokens of the tokenizer. The loss
counts the assistant's tokens only: each assistant turn with its end-of-turn marker, so a model learns to stop.
A pair is the prompt followed by the completion and the end-of-text token, with no template (as TRL treats a
pair that is not a conversation), the loss on the completion.

Rows split as every corpus does: the first 90% train, the last 10% validate. `bitext` (data/support.py) is the
Bitext customer-support set as one-turn conversations - the customer's request, the agent's reply - split by
its fixed split (its test split held out).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from aigc.core.errors import UserError
from aigc.data.text import TRAIN_SHARE, json_lines
from aigc.data.tokenizer import TextTokenizer

PREFIX = "chat:"
TURN_START, TURN_END = "<|im_start|>", "<|im_end|>"
# ChatML (as Qwen's tokenizers write it): <|im_start|>role\ncontent<|im_end|>\n per message
CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>'"
    " + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
ROLES = ("system", "developer", "user", "assistant", "tool")


CHAT_SETS = ("bitext",)  # named data sets of conversations


def is_chat(name: str) -> bool:
    return name.startswith(PREFIX) or name in CHAT_SETS


def chat_splits(name: str, data_dir: str | None = None) -> tuple[list[dict], list[dict]]:
    """(training rows, validation rows) of chat data `name`: a .jsonl's (`chat:PATH`), or a named set's pairs
    as one-turn conversations."""
    if name in CHAT_SETS:
        from aigc.data.support import read_pairs

        splits = read_pairs(name, data_dir)
        return tuple(
            [{"messages": [{"role": "user", "content": p.question}, {"role": "assistant", "content": p.answer}]}
             for p in splits[split]]
            for split in ("train", "validation")
        )  # fmt: skip
    return split_rows(read_chat(Path(name.removeprefix(PREFIX))))


@dataclass(frozen=True)
class ChatFormat:
    """How conversations become text: a Jinja chat template and the tokens it may name."""

    template: str
    bos_token: str = ""
    eos_token: str = ""

    @classmethod
    def of(cls, config) -> ChatFormat:
        """The format a run config holds (its chat_template, bos_token and eos_token)."""
        return cls(config.chat_template, config.bos_token, config.eos_token)


def default_format(tokenizer: TextTokenizer) -> tuple[ChatFormat, TextTokenizer]:
    """The ChatML-style default, with its markers added to (a copy of) `tokenizer` as special tokens."""
    return ChatFormat(CHATML, "", TURN_END), tokenizer.with_special_tokens([TURN_START, TURN_END])


def render(chat: ChatFormat, messages: list[dict], add_generation_prompt: bool = False) -> str:
    """The conversation as the template writes it (transformers' environment: trimmed blocks, a sandbox)."""
    from jinja2 import TemplateError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message):
        raise TemplateError(message)

    environment = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    environment.globals["raise_exception"] = raise_exception
    try:
        return environment.from_string(chat.template).render(
            messages=messages,
            add_generation_prompt=add_generation_prompt,
            bos_token=chat.bos_token,
            eos_token=chat.eos_token,
        )
    except TemplateError as error:
        raise UserError(f"the chat template refused a conversation: {error}") from None


def read_chat(path: Path) -> list[dict]:
    """The rows of a chat .jsonl, each checked; UserError naming the line of a bad one."""
    if not path.is_file():
        raise UserError(f"{PREFIX}{path} does not exist; give a .jsonl of conversations")
    rows = [checked(row, f"{path}:{number}") for number, row in json_lines(path)]
    if not rows:
        raise UserError(f"{PREFIX}{path} holds no conversations")
    return rows


def checked(row, where: str) -> dict:
    if isinstance(row, dict) and isinstance(row.get("prompt"), str) and isinstance(row.get("completion"), str):
        return {"prompt": row["prompt"], "completion": row["completion"]}
    messages = row.get("messages") if isinstance(row, dict) else None
    if not isinstance(messages, list) or not messages:
        raise UserError(f'{where}: each line must hold "messages" (a list) or "prompt" and "completion" strings')
    for message in messages:
        if (
            not isinstance(message, dict)
            or message.get("role") not in ROLES
            or not isinstance(message.get("content"), str)
        ):
            raise UserError(f'{where}: each message needs a "role" ({", ".join(ROLES)}) and a "content" string')
    if not any(m["role"] == "assistant" for m in messages):
        raise UserError(f"{where}: the conversation has no assistant message to learn from")
    return {"messages": [{"role": m["role"], "content": m["content"]} for m in messages]}


def split_rows(rows: list[dict]) -> tuple[list[dict], list[dict]]:
    """(the first 90% of the rows, the last 10%, at least one each when there are two or more)."""
    cut = min(max(1, int(len(rows) * TRAIN_SHARE)), max(1, len(rows) - 1))
    return rows[:cut], rows[cut:]


def spans(chat: ChatFormat, row: dict) -> tuple[str, list[tuple[int, int]]]:
    """(the row's text, the character spans the loss counts)."""
    if "prompt" in row:
        text = row["prompt"] + row["completion"] + chat.eos_token
        return text, [(len(row["prompt"]), len(text))]
    messages = row["messages"]
    text = render(chat, messages)
    counted = []
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        before, through = render(chat, messages[:i], add_generation_prompt=True), render(chat, messages[: i + 1])
        if not (through.startswith(before) and text.startswith(through)):
            raise UserError("the chat template does not render a conversation as the sum of its turns; use another")
        counted.append((len(before), len(through)))
    return text, counted


def encode_row(tokenizer: TextTokenizer, chat: ChatFormat, row: dict) -> tuple[list[int], list[int]]:
    """(token ids, 1 for each token the loss counts, else 0)."""
    text, counted = spans(chat, row)
    ids, offsets = tokenizer.encode_with_offsets(text)
    targets = [int(any(start <= first < end for start, end in counted)) for first, _ in offsets]
    return ids, targets


def chat_examples(tokenizer: TextTokenizer, chat: ChatFormat, rows: list[dict], length: int) -> torch.Tensor:
    """int32 [N, 2, length]: each row's token ids (row 0; 0 after its end) and which of them the loss counts (row
    1), cut to `length` tokens; rows left with nothing to learn from are dropped, with a warning (a UserError
    when all are)."""
    examples = []
    for row in rows:
        ids, targets = encode_row(tokenizer, chat, row)
        ids, targets = ids[:length], targets[:length]
        if not any(targets[1:]):  # the first token is never predicted
            continue
        pad = length - len(ids)
        examples.append(torch.tensor([ids + [0] * pad, targets + [0] * pad], dtype=torch.int32))
    if not examples:
        raise UserError(f"no conversation has an assistant token within {length} tokens; give a longer --context")
    if len(examples) < len(rows):
        skipped = len(rows) - len(examples)
        print(
            f"warning: {skipped} of {len(rows)} conversations have no assistant token within {length} tokens; "
            "skipped (a longer --context keeps them)",
            file=sys.stderr,
        )
    return torch.stack(examples)


def chat_text(chat: ChatFormat, rows: list[dict]) -> str:
    """The rows as text, one after another (what a tokenizer trained for the data is fitted to)."""
    return "".join(spans(chat, row)[0] for row in rows)
