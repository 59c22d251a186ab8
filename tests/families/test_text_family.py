"""Adding a text family is a subclass of TextFamily and one registry entry: a toy one defined here, and nowhere in
aigc, gets `aigc train`, `aigc sample --prompt` and /v1/completions from the text interface and the one engine,
with no other module changing."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

import pytest
import torch
import torch.nn.functional as F
from fastapi.testclient import TestClient

from aigc.cli import main as aigc
from aigc.core.checkpoint import latest_checkpoint
from aigc.core.config import Config
from aigc.data.text import TextDataConfig, TokenWindows, read_corpus, token_ids
from aigc.data.tokenizer import TextTokenizer
from aigc.families import registry
from aigc.families.family import FORMAT_VERSION
from aigc.families.lm.config import LMSampleConfig
from aigc.families.text import TextFamily
from aigc.models.compression import CompressionConfig
from aigc.models.transformer import Transformer, TransformerConfig
from aigc.training.batch import TrainingData
from aigc.training.config import TrainConfig
from aigc.training.optim import accumulate_gradients, apply_gradients, make_optimizer


@dataclass(frozen=True)
class ToyTextRunConfig(Config):
    family: Literal["toy-text"] = "toy-text"
    data: TextDataConfig = TextDataConfig()
    model: TransformerConfig = TransformerConfig(width=16, layers=1, heads=2, context=16)
    train: TrainConfig = TrainConfig(batch=8, lr=1e-2, warmup=0, snapshot_every=2048, grid_size=2)
    sample: LMSampleConfig = LMSampleConfig(max_tokens=8)
    compression: CompressionConfig = CompressionConfig()
    tokenizer: str = ""
    format_version: int = FORMAT_VERSION


class CharModel(Transformer):
    def __init__(self, config: ToyTextRunConfig):
        super().__init__(config.model)
        self.characters = TextTokenizer.from_str(config.tokenizer)


class ToyTextTrainer:
    def __init__(self, config, device):
        self.config = config
        self.model = CharModel(config).to(device)
        self.optimizers = {"model": make_optimizer(self.model.parameters(), config.train)}
        self.modules = {"model": self.model}

    @property
    def sampling_model(self):
        return self.model

    def step(self, batches, position):
        def losses(batch):
            logits = self.model(batch.data[:, :-1].long())
            loss = F.cross_entropy(logits.flatten(0, 1), batch.data[:, 1:].long().flatten())
            return loss, {"loss": loss}

        self.optimizers["model"].zero_grad()
        values = accumulate_gradients(batches, losses)
        apply_gradients(self.optimizers["model"], self.model, 1.0)
        return values


class ToyTextFamily(TextFamily):
    name = "toy-text"
    help = "a character transformer, for the text interface's test"
    examples = "examples:\n  aigc train toy-text --data text:FILE\n"
    run_config = ToyTextRunConfig
    sample_config = LMSampleConfig
    flag_components = ("data", "train", "sample")
    sampling_modules = ("model",)
    model_type = CharModel
    metrics = "val_loss"
    selection_metric = "val_loss"

    def training_data(self, config):
        import dataclasses

        corpus = read_corpus(config.data)
        tokenizer = TextTokenizer.train("char", corpus.train + corpus.validation)
        model = dataclasses.replace(config.model, vocab_size=tokenizer.vocab_size)
        config = dataclasses.replace(config, model=model, tokenizer=tokenizer.to_str())
        windows = TokenWindows(torch.from_numpy(token_ids(corpus.train, tokenizer).astype("int32")), 17)
        return config, TrainingData(windows, None, lambda windows, generator: windows)

    def trainer(self, config, device, fresh=True):
        return ToyTextTrainer(config, device)

    def example_size(self, config) -> int:
        return config.model.context

    def build(self, config):
        return CharModel(config)

    def tokenizer(self, model):
        return model.characters


@pytest.fixture
def toy_text(monkeypatch):
    """The one registry entry."""
    monkeypatch.setitem(registry.FAMILIES, "toy-text", ToyTextFamily())


def test_a_new_text_family_trains_samples_and_is_served(toy_text, tmp_path, capsys):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("abcabcabd abcabcabd abcabc\n" * 200)
    run_dir = tmp_path / "toy-text"
    train = ["--data", f"text:{corpus}", "--tokens", "4096", "--no-progress", "--out", str(run_dir)]
    assert aigc(["train", "toy-text", *train]) == 0
    step = latest_checkpoint(run_dir).stem  # 4096 tokens in windows of 16, 8 a step: 32 steps
    assert step == "000032" and (run_dir / "samples" / f"{step}.txt").read_text().startswith("--- seed 0 ---\n")
    capsys.readouterr()

    assert aigc(["sample", str(run_dir), "--prompt", "abcab", "--max-tokens", "6", "--temperature", "0"]) == 0
    printed = capsys.readouterr().out
    model, config = registry.load_model(run_dir)
    (completion,) = registry.generate(model, [0], ["abcab"], LMSampleConfig(max_tokens=6, temperature=0.0))
    assert printed.strip() == "abcab" + completion.text and len(completion.text) == 6
    assert aigc(["sample", str(run_dir), "--prompt", "xyz"]) == 2  # characters the model never saw
    assert "not in this model's vocabulary" in capsys.readouterr().err

    from aigc.serving.app import create_app
    from aigc.serving.settings import load_settings

    settings = load_settings(models={"toy": latest_checkpoint(run_dir)})
    with TestClient(create_app(settings)) as client:
        deadline = time.monotonic() + 60
        while client.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, "the served model did not load"
            time.sleep(0.05)
        body = {"prompt": "abcab", "max_tokens": 6, "temperature": 0, "seed": 0}
        reply = client.post("/v1/completions", json=body)
        assert reply.status_code == 200 and reply.json()["choices"][0]["text"] == completion.text
        assert reply.json()["usage"]["prompt_tokens"] == 5
        assert client.post("/v1/completions", json={**body, "prompt": ""}).status_code == 422
