"""The language-model family: a GPT-style decoder-only transformer trained from scratch on a text, drawing
completions of prompts."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from aigc.core.device import model_device
from aigc.core.errors import UserError
from aigc.data.text import TokenWindows, read_corpus, token_ids
from aigc.data.tokenizer import TextTokenizer
from aigc.families.family import Family, from_recipe
from aigc.families.lm.config import RECIPES, LMRunConfig, LMSampleConfig
from aigc.models.transformer import Transformer, TransformerConfig
from aigc.sampling.text import Completion, Decoding, decode
from aigc.training.batch import TrainingData

EXAMPLES = """examples:
  aigc train lm --minutes 1                              # the bundled Python docs, a character model
  aigc train lm --data shakespeare --data-dir DIR --minutes 10 --out runs/shakespeare
  aigc train lm --data gutenberg --tokenizer bpe --vocab-size 2048 --tokens 20M
  aigc train lm --data text:notes/ --context 512 --optimizer adamw --schedule cosine
  aigc train lm --resume runs/shakespeare --tokens 5M    # continue, 5M tokens more
"""
SNAPSHOT_PROMPT = "\n"  # what the texts of each snapshot continue (nanoGPT's default start)

# (completion index, text added since the last call): a stream of the completions as they are drawn
OnText = Callable[[int, str], None]


class LanguageModel(Transformer):
    """A transformer with its run's tokenizer: text in, text out."""

    def __init__(self, config: TransformerConfig, tokenizer: TextTokenizer):
        super().__init__(config)
        self.tokenizer = tokenizer


class LMFamily(Family):
    name = "lm"
    help = "a GPT-style language model (decoder-only transformer)"
    examples = EXAMPLES
    run_config = LMRunConfig
    sample_config = LMSampleConfig
    flag_components = ("data", "model", "train", "sample")
    recipes = {name: functools.partial(from_recipe, LMRunConfig, RECIPES, name) for name in RECIPES}
    sampling_modules = ("model",)
    model_type = LanguageModel
    metrics = "val_loss,bits_per_byte,perplexity,distinct_2,max_copy_chars"
    remedy = "a lower --lr or a longer --warmup-tokens"
    run_suffix = "-lm"
    modality = "text"
    unit = "tok"
    progress_key = "tokens"
    selection_metric = "val_loss"
    export_formats = ("hf",)

    def title(self, config) -> str:
        m = config.model
        return f"lm ({m.layers} layers x {m.width}, context {m.context}, {config.data.tokenizer} tokens)"

    # Training -------------------------------------------------------------------------------------------

    def training_data(self, config):
        """The training split as windows of context + 1 tokens; a new run fits its tokenizer here (characters:
        over the whole text, as nanoGPT does, so the validation split has no unknown one; BPE: the training
        split), a resumed one keeps its own."""
        corpus = read_corpus(config.data)
        if config.tokenizer:
            tokenizer = TextTokenizer.from_str(config.tokenizer)
        else:
            fitted = corpus.train + corpus.validation if config.data.tokenizer == "char" else corpus.train
            tokenizer = TextTokenizer.train(config.data.tokenizer, fitted, config.data.vocab_size)
        model = dataclasses.replace(config.model, vocab_size=tokenizer.vocab_size)
        config = dataclasses.replace(config, model=model, tokenizer=tokenizer.to_str())
        ids = torch.from_numpy(token_ids(corpus.train, tokenizer).astype("int32"))
        windows = TokenWindows(ids, config.model.context + 1)
        return config, TrainingData(windows, None, lambda windows, generator: windows)

    def trainer(self, config, device: torch.device):
        from aigc.families.lm.trainer import LMTrainer

        return LMTrainer(self.build(config), config, device)

    def example_size(self, config) -> int:
        return config.model.context  # a window predicts `context` tokens

    def progress(self, seen: int) -> dict[str, float]:
        return {self.progress_key: seen}

    def amount(self, seen: int) -> str:
        return f"{seen / 1e6:.2f}M tokens"

    def run_files(self, config) -> dict[str, str]:
        return {"tokenizer.json": config.tokenizer}

    def save_samples(self, model, config, device: torch.device, stem: Path) -> None:
        seeds = range(config.train.samples)
        drawn = self.generate(model, seeds, [SNAPSHOT_PROMPT] * len(seeds), config.sample, device=device)
        stem.with_suffix(".txt").write_text(
            "".join(f"--- seed {s} ---{SNAPSHOT_PROMPT}{c.text}\n" for s, c in zip(seeds, drawn, strict=True))
        )

    # Sampling -------------------------------------------------------------------------------------------

    def build(self, config) -> LanguageModel:
        return LanguageModel(config.model, TextTokenizer.from_str(config.tokenizer))

    def export(self, model: LanguageModel, config, format: str, out: Path) -> list[Path]:
        from aigc.families.lm.export import export_hf

        if config.compression.quantize != "none":
            raise UserError(f"this checkpoint is {config.compression.quantize}-compressed; export the run it came from")
        return export_hf(model, out)

    def info(self, model: LanguageModel, config) -> dict:
        return {
            "context": config.model.context,
            "vocab_size": config.model.vocab_size,
            "tokenizer": model.tokenizer.kind,
        }

    def check_request(self, model: LanguageModel, prompts, sample) -> None:
        for prompt in prompts or ():
            self.prompt_ids(model, prompt)

    def prompt_ids(self, model: LanguageModel, prompt: str) -> list[int]:
        """The token ids of a prompt; UserError when it is empty, has a character the model never saw, or
        leaves no room in the context to generate."""
        if not prompt:
            raise UserError("the prompt is empty; give at least one character (e.g. a newline)")
        ids = model.tokenizer.encode(prompt)
        if len(ids) >= model.config.context:
            raise UserError(
                f"the prompt is {len(ids)} tokens; this model reads at most {model.config.context - 1} "
                "before the first one it generates; shorten it"
            )
        return ids

    @torch.no_grad()
    def generate(
        self,
        model: LanguageModel,
        seeds: Sequence[int],
        prompts: Sequence[str] | None = None,
        sample: LMSampleConfig | None = None,
        batch_size: int = 64,
        device: str | torch.device | None = None,
        progress: bool = False,
        on_text: OnText | None = None,
    ) -> list[Completion]:
        """One completion per seed, of prompts[k] (default: a newline) - completion k depends only on its prompt,
        its seed and the settings, never on the others drawn beside it. `on_text(k, text)` hears each completion's
        new text as it is drawn (a stream)."""
        sample = self.sample_config() if sample is None else sample
        prompts = [SNAPSHOT_PROMPT] * len(seeds) if prompts is None else list(prompts)
        if len(prompts) != len(seeds):
            raise UserError(f"{len(prompts)} prompts for {len(seeds)} seeds; give one prompt per seed")
        ids = [self.prompt_ids(model, prompt) for prompt in prompts]  # every prompt checked before any work
        device = torch.device(device) if device else model_device(model)
        decoding = Decoding(
            sample.max_tokens, sample.temperature, sample.top_k, sample.top_p, sample.repetition_penalty, sample.stop
        )
        was_training = model.training
        model.eval()
        completions: list[Completion | None] = [None] * len(seeds)
        try:
            for rows in groups(ids, batch_size):
                stream = None if on_text is None else Stream(model.tokenizer, rows, sample.stop, on_text)
                drawn = decode(
                    model,
                    ids[rows[0]],
                    [seeds[k] for k in rows],
                    decoding,
                    model.tokenizer.decode,
                    on_token=None if stream is None else stream.token,
                )
                for row, (k, completion) in enumerate(zip(rows, drawn, strict=True)):
                    completions[k] = completion
                    if stream is not None:
                        stream.finish(row, completion.text)
        finally:
            model.train(was_training)
        return completions


def groups(ids: list[list[int]], size: int) -> list[list[int]]:
    """The indices of `ids`, gathered by equal prompt (they decode together), in runs of at most `size`."""
    by_prompt: dict[tuple[int, ...], list[int]] = {}
    for k, prompt in enumerate(ids):
        by_prompt.setdefault(tuple(prompt), []).append(k)
    return [rows[i : i + size] for rows in by_prompt.values() for i in range(0, len(rows), size)]


class Stream:
    """Turns the tokens decode() reports into the text each completion gained, so that what is streamed adds
    up to the completion exactly: decoded as a whole so far (a byte-level token may be half a character, held
    back until whole), and, with stop strings, holding back as many characters as could begin one."""

    def __init__(self, tokenizer: TextTokenizer, rows: list[int], stop: Sequence[str], on_text: OnText):
        self.tokenizer, self.rows, self.on_text = tokenizer, rows, on_text
        self.hold = max((len(s) - 1 for s in stop), default=0)
        self.tokens: list[list[int]] = [[] for _ in rows]
        self.sent = [0] * len(rows)

    def token(self, row: int, token: int) -> None:
        self.tokens[row].append(token)
        text = self.tokenizer.decode(self.tokens[row]).rstrip("\ufffd")
        self.send(row, text[: len(text) - self.hold])

    def finish(self, row: int, completion: str) -> None:
        self.send(row, completion)

    def send(self, row: int, text: str) -> None:
        if len(text) > self.sent[row]:
            self.on_text(self.rows[row], text[self.sent[row] :])
            self.sent[row] = len(text)
