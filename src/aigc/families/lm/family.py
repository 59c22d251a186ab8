"""The language-model family: a GPT-style decoder-only transformer trained on a text - from scratch, or
fine-tuned from an aigc run or a Hugging Face causal LM (every weight, or LoRA adapters) - drawing completions
of prompts."""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from aigc.core.checkpoint import Checkpoint, latest_checkpoint, read_checkpoint
from aigc.core.config import from_dict
from aigc.core.device import model_device
from aigc.core.distributed import is_main
from aigc.core.errors import UserError
from aigc.data.chat import (
    CHATML,
    TURN_END,
    TURN_START,
    ChatFormat,
    chat_examples,
    chat_text,
    default_format,
    is_chat,
    read_chat,
    render,
    split_rows,
)
from aigc.data.text import TokenWindows, read_corpus, token_ids
from aigc.data.tokenizer import TextTokenizer
from aigc.families.family import Family, from_recipe
from aigc.families.lm.config import RECIPES, LMRunConfig, LMSampleConfig
from aigc.models.lora import LoRA, add_lora, linear_names, trainable_share, unload_lora
from aigc.models.pretrained import PretrainedLM, is_pretrained_dir, pretrained_weights, read_pretrained
from aigc.models.transformer import Transformer, TransformerConfig
from aigc.sampling.batching import Request
from aigc.sampling.text import Completion, Decoding, decode
from aigc.training.batch import TrainingData

EXAMPLES = """examples:
  aigc train lm --minutes 1                              # the bundled Python docs, a character model
  aigc train lm --data shakespeare --data-dir DIR --minutes 10 --out runs/shakespeare
  aigc train lm --data gutenberg --tokenizer bpe --vocab-size 2048 --tokens 20M
  aigc train lm --data text:notes/ --context 512 --optimizer adamw --schedule cosine
  aigc train lm --resume runs/shakespeare --tokens 5M    # continue, 5M tokens more
  aigc train lm --init runs/gutenberg --data text:mine.txt --lr 1e-3 --tokens 1M   # fine-tune every weight
  aigc train lm --init hf-model/ --lora-rank 8 --data text:mine.txt --lr 1e-3      # LoRA on a HF directory
"""
SNAPSHOT_PROMPT = "\n"  # what the texts of each snapshot continue (nanoGPT's default start)

# (completion index, text added since the last call): a stream of the completions as they are drawn
OnText = Callable[[int, str], None]


class LanguageModel(Transformer):
    """aigc's transformer with its run's tokenizer: text in, text out."""

    def __init__(self, config: TransformerConfig, tokenizer: TextTokenizer):
        super().__init__(config)
        self.tokenizer = tokenizer


class PretrainedLanguageModel(PretrainedLM):
    """A transformers causal LM with its run's tokenizer: text in, text out."""

    def __init__(self, config_json: str, tokenizer: TextTokenizer):
        super().__init__(config_json)
        self.tokenizer = tokenizer


class LMFamily(Family):
    name = "lm"
    help = "a GPT-style language model (decoder-only transformer)"
    examples = EXAMPLES
    run_config = LMRunConfig
    sample_config = LMSampleConfig
    flag_components = ("data", "model", "train", "sample", "finetune")
    recipes = {name: functools.partial(from_recipe, LMRunConfig, RECIPES, name) for name in RECIPES}
    sampling_modules = ("model",)
    model_type = (LanguageModel, PretrainedLanguageModel)
    metrics = "val_loss,bits_per_byte,perplexity,distinct_2,max_copy_chars"
    remedy = "a lower --lr or a longer --warmup-tokens"
    run_suffix = "-lm"
    modality = "text"
    conditions = "prompts"
    unit = "tok"
    progress_key = "tokens"
    selection_metric = "val_loss"
    export_formats = ("hf",)

    def title(self, config) -> str:
        m = config.model
        if config.pretrained:  # a transformers architecture, fine-tuned in windows of `context`
            kind = json.loads(config.pretrained)["model_type"]
            return f"lm ({kind} from {config.finetune.init}, windows of {m.context} tokens)"
        return f"lm ({m.layers} layers x {m.width}, context {m.context}, {config.data.tokenizer} tokens)"

    # Training -------------------------------------------------------------------------------------------

    def training_data(self, config):
        """The training split as windows of context + 1 tokens; a new run fits its tokenizer here (characters:
        over the whole text, as nanoGPT does, so the validation split has no unknown one; BPE: the training
        split), a resumed one keeps its own."""
        if config.finetune.init and not config.tokenizer:
            config = self.from_init(config)
        if is_chat(config.data.name):
            return self.chat_training_data(config)
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
        return with_end_of_turn(config, tokenizer), TrainingData(windows, None, lambda windows, generator: windows)

    def chat_training_data(self, config):
        """The training conversations as [N, 2, context + 1] examples (ids, which of them the loss counts); a
        tokenizer without a chat template gets the ChatML-style default, its markers as new tokens."""
        train_rows, _ = split_rows(read_chat(Path(config.data.name.removeprefix("chat:"))))
        if config.tokenizer:
            tokenizer = TextTokenizer.from_str(config.tokenizer)
        else:  # a model trained from scratch on the conversations: a tokenizer of their text, markers aside
            text = chat_text(ChatFormat(CHATML), train_rows).replace(TURN_START, "").replace(TURN_END, "")
            tokenizer = TextTokenizer.train(config.data.tokenizer, text, config.data.vocab_size)
        if config.chat_template:
            chat = ChatFormat.of(config)
        else:
            chat, tokenizer = default_format(tokenizer)
            config = dataclasses.replace(
                config, chat_template=chat.template, bos_token=chat.bos_token, eos_token=chat.eos_token
            )
        config = with_vocabulary(dataclasses.replace(config, tokenizer=tokenizer.to_str()), tokenizer.vocab_size)
        examples = chat_examples(tokenizer, chat, train_rows, config.model.context + 1)
        return with_end_of_turn(config, tokenizer), TrainingData(examples, None, lambda examples, generator: examples)

    def from_init(self, config):
        """A new fine-tuning run's config: the model, tokenizer and chat template of `--init` (an aigc lm run or
        a Hugging Face directory), the training window `--context` (default: an aigc run's context; a Hugging
        Face model's, at most the recipe's), LoRA's defaults resolved."""
        path = Path(config.finetune.init)
        if not (path / "config.json").is_file():
            raise UserError(
                f"--init {path}: no config.json there; give an aigc lm run or a Hugging Face model directory"
            )
        defaults = self.new_config(config.recipe).model
        changed = [
            f.name for f in dataclasses.fields(defaults) if getattr(config.model, f.name) != getattr(defaults, f.name)
        ]
        fixed = [name for name in changed if name not in ("context", "dropout")]
        if fixed:
            flags = ", ".join("--" + name.replace("_", "-") for name in fixed)
            raise UserError(f"{flags}: the model comes from --init {path}; drop these flags")
        hugging_face = is_pretrained_dir(path)
        if hugging_face:  # the tokenizer's files, and the architecture's config.json
            source = read_pretrained(path)
            model, pretrained = config.model, source.config
        else:  # the run's config
            source = self.init_checkpoint(path).config
            model, pretrained = dataclasses.replace(source.model, dropout=config.model.dropout), source.pretrained
        taken = {name: getattr(source, name) for name in ("tokenizer", "chat_template", "bos_token", "eos_token")}
        config = dataclasses.replace(config, pretrained=pretrained, **taken)
        base = self.base(dataclasses.replace(config, model=model))
        # default window: an aigc run's own context; a Hugging Face model's (often thousands) capped at the recipe's
        context = min(defaults.context, base.context) if hugging_face else base.context
        context = config.model.context if "context" in changed else context
        if context > base.context:
            raise UserError(f"--context {context}: this model reads at most {base.context} tokens")
        model = dataclasses.replace(model, context=context, vocab_size=base.tokenizer.vocab_size)
        finetune = config.finetune
        if finetune.lora_rank:
            finetune = dataclasses.replace(
                finetune,
                lora_alpha=finetune.lora_alpha or 2.0 * finetune.lora_rank,
                lora_targets=finetune.lora_targets or linear_names(base, base.output_head()),
            )
        return dataclasses.replace(config, model=model, finetune=finetune)

    @staticmethod
    def init_checkpoint(path: Path) -> Checkpoint:
        """The newest checkpoint of the aigc lm run in `path`: its config (an LMRunConfig) and model weights."""
        checkpoint = read_checkpoint(latest_checkpoint(path), modules=("model",))
        if checkpoint.config.get("family") != "lm":
            raise UserError(f"--init {path} is a {checkpoint.config.get('family')} run; give a language model (lm) run")
        config = from_dict(LMRunConfig, checkpoint.config, str(checkpoint.path))  # lm runs began at format 2
        if config.compression.quantize != "none":
            raise UserError(f"--init {path} is compressed; fine-tune the run it was compressed from")
        return dataclasses.replace(checkpoint, config=config)

    def init_weights(self, config) -> dict[str, torch.Tensor]:
        """The weights `--init` holds, named as this run's base model names them (adapters merged)."""
        path = Path(config.finetune.init)
        if is_pretrained_dir(path):
            return {"network." + name: tensor for name, tensor in pretrained_weights(path).items()}
        checkpoint = self.init_checkpoint(path)
        model = self.build(checkpoint.config)
        model.load_state_dict(checkpoint.modules["model"])
        return unload_lora(model).state_dict()

    def trainer(self, config, device: torch.device, fresh: bool = True):
        """The trainer; a fresh fine-tuning run starts from its init's weights (a resumed one is loaded from its
        own checkpoint, which holds every weight, so it does not need the init again)."""
        from aigc.families.lm.trainer import LMTrainer

        model = self.base(config)
        if fresh and config.finetune.init:
            model.load_state_dict(with_new_rows(self.init_weights(config), model))
        model = self.adapted(model, config)
        if is_main() and config.finetune.init:
            trainable, total = trainable_share(model)
            print(f"trainable parameters: {trainable:,} of {total:,} ({100 * trainable / total:.2f}%)")
        return LMTrainer(model, config, device)

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

    def plain(self, model, config):
        """A LoRA run's model with its adapters merged, and its config without them."""
        if not config.finetune.lora_rank:
            return model, config
        finetune = dataclasses.replace(config.finetune, lora_rank=0, lora_alpha=None, lora_targets=())
        return unload_lora(model), dataclasses.replace(config, finetune=finetune)

    def checkpoint_files(self, model, config) -> dict[str, bytes]:
        """A LoRA run's adapters as peft writes them (adapter/adapter_config.json, adapter_model.safetensors),
        over the init's base: `PeftModel.from_pretrained(base, "RUN/checkpoints/adapter")`."""
        from aigc.families.lm.export import adapter_bytes

        if not config.finetune.lora_rank:
            return {}
        return {f"adapter/{name}": data for name, data in adapter_bytes(model, config, config.finetune.init).items()}

    # Sampling -------------------------------------------------------------------------------------------

    def base(self, config) -> LanguageModel | PretrainedLanguageModel:
        """The model without adapters, its weights random: aigc's transformer, or the transformers architecture
        the run fine-tunes."""
        tokenizer = TextTokenizer.from_str(config.tokenizer)
        if config.pretrained:
            return PretrainedLanguageModel(config.pretrained, tokenizer)
        return LanguageModel(config.model, tokenizer)

    def adapted(self, model, config):
        """`model` with the run's LoRA adapters, if it has them."""
        f = config.finetune
        if not f.lora_rank:
            return model
        return add_lora(model, LoRA(f.lora_rank, f.lora_alpha, f.lora_dropout, f.lora_targets))

    def build(self, config) -> LanguageModel | PretrainedLanguageModel:
        return self.adapted(self.base(config), config)

    def export(self, model, config, format: str, out: Path, merge_lora: bool = False) -> list[Path]:
        """A Hugging Face directory; a LoRA run's adapters merged into it (`merge_lora`), or beside it in
        `adapter/` as peft writes them (peft loads them over the exported base)."""
        from aigc.families.lm.export import export_adapter, export_hf

        if config.compression.quantize != "none":
            raise UserError(f"this checkpoint is {config.compression.quantize}-compressed; export the run it came from")
        if merge_lora and not config.finetune.lora_rank:
            raise UserError("--merge-lora: this run has no LoRA adapters; export it without the flag")
        files = []
        if config.finetune.lora_rank and not merge_lora:
            files = export_adapter(model, config, out / "adapter", base=out)
        return export_hf(unload_lora(model, merge=merge_lora), config.chat_template, out) + files

    def info(self, model: LanguageModel, config) -> dict:
        return {
            "context": model.context,
            "vocab_size": config.model.vocab_size,
            "tokenizer": model.tokenizer.kind,
            "chat": bool(config.chat_template),  # /v1/chat/completions answers it
        }

    def chat_prompt(self, config, messages: list[dict]) -> str:
        """The prompt that asks the model for the next assistant turn of a conversation; UserError when the model
        has no chat template."""
        if not config.chat_template:
            raise UserError(
                "this model has no chat template; fine-tune it on conversations (--data chat:PATH) or use "
                "/v1/completions"
            )
        return render(ChatFormat.of(config), messages, add_generation_prompt=True)

    def check_request(self, model: LanguageModel, prompts, sample) -> None:
        for prompt in prompts or ():
            self.prompt_ids(model, prompt)

    def prompt_ids(self, model: LanguageModel, prompt: str) -> list[int]:
        """The token ids of a prompt; UserError when it is empty, has a character the model never saw, or
        leaves no room in the context to generate."""
        if not prompt:
            raise UserError("the prompt is empty; give at least one character (e.g. a newline)")
        ids = model.tokenizer.encode(prompt)
        if len(ids) >= model.context:
            raise UserError(
                f"the prompt is {len(ids)} tokens; this model reads at most {model.context - 1} "
                "before the first one it generates; shorten it"
            )
        return ids

    @staticmethod
    def decoding(sample: LMSampleConfig) -> Decoding:
        return Decoding(
            sample.max_tokens,
            sample.temperature,
            sample.top_k,
            sample.top_p,
            sample.repetition_penalty,
            sample.stop,
            sample.stop_tokens,
            sample.logprobs,
        )

    def decode_requests(
        self, model, seeds: Sequence[int], prompts: Sequence[str], sample: LMSampleConfig, on_text: OnText, on_done,
        on_error, cancelled,
    ) -> list[Request]:  # fmt: skip
        """The requests of a decode loop (continuous batching, sampling/batching.py) for completion k of
        prompts[k] with seeds[k]: `on_text(k, text)` hears its new text, `on_done(k, completion)` its end."""
        ids = [self.prompt_ids(model, prompt) for prompt in prompts]  # every prompt checked before any work
        decoding = self.decoding(sample)
        requests = []
        for k, (prompt, seed) in enumerate(zip(ids, seeds, strict=True)):
            stream = Stream(model.tokenizer, [k], sample.stop, on_text)

            def done(completion, k=k, stream=stream):
                stream.finish(0, completion.text)
                on_done(k, completion)

            requests.append(
                Request(prompt, seed, decoding, done, functools.partial(stream.token, 0), on_error, cancelled)
            )
        return requests

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
        decoding = self.decoding(sample)
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


def with_end_of_turn(config, tokenizer: TextTokenizer):
    """`config` whose completions end at its end-of-text (or end-of-turn) token, when its tokenizer has one."""
    token = tokenizer.tokenizer.token_to_id(config.eos_token) if config.eos_token else None
    if token is None:
        return config
    return dataclasses.replace(config, sample=dataclasses.replace(config.sample, stop_tokens=(token,)))


def with_vocabulary(config, size: int):
    """`config` with a model of at least `size` tokens (a pretrained model may hold more rows than its tokenizer
    has tokens; tokens the run added make it grow)."""
    if config.pretrained:
        architecture = json.loads(config.pretrained)
        if architecture["vocab_size"] < size:
            config = dataclasses.replace(config, pretrained=json.dumps({**architecture, "vocab_size": size}))
    model = dataclasses.replace(config.model, vocab_size=max(config.model.vocab_size, size))
    return dataclasses.replace(config, model=model)


def with_new_rows(weights: dict[str, torch.Tensor], model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The init's weights as `model` holds them: rows of the embedding (and head) for the tokens the run added,
    each the mean of the others (Hewitt 2021: a new token starts as an average one); names the model does not
    hold (a tied head's second name) left out."""
    target = model.state_dict()
    fitted = {}
    for name, tensor in weights.items():
        if name not in target:
            continue
        want = target[name].shape
        if want != tensor.shape and want[1:] == tensor.shape[1:] and want[0] > tensor.shape[0]:
            extra = tensor.mean(0, keepdim=True).expand(want[0] - tensor.shape[0], *tensor.shape[1:])
            tensor = torch.cat([tensor, extra])
        fitted[name] = tensor
    return fitted


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
