"""A classifier on a Hugging Face directory (`--init DIR`): transformers' own sequence classifier of the
architecture - causal LMs (Llama, GPT-2) and an encoder (BERT) - on tiny random models saved by the test, trained
by aigc and labelling texts as transformers' class does, padding included."""

import dataclasses
import json

import pytest
import torch

from aigc.cli import main as aigc
from aigc.core.checkpoint import latest_checkpoint, read_checkpoint
from aigc.core.errors import UserError
from aigc.data.tokenizer import TextTokenizer
from aigc.families.registry import FAMILIES, load_model
from aigc.models.transformer import TransformerConfig
from aigc.runs import train
from conftest import tiny_classifier, write_reviews


def hf_directory(tmp_path, kind: str, text: str):
    """A tiny random transformers model of `kind` (a causal LM, or BERT's masked LM) saved with a fast character
    tokenizer that has a pad token."""
    import transformers as hf

    tokenizer = TextTokenizer.train("char", text).with_special_tokens(["<pad>"])
    vocab = tokenizer.vocab_size
    torch.manual_seed(0)
    if kind == "gpt2":
        model = hf.GPT2LMHeadModel(hf.GPT2Config(vocab_size=vocab, n_positions=96, n_embd=32, n_layer=2, n_head=2))
    elif kind == "bert":
        shape = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2)
        model = hf.BertForMaskedLM(hf.BertConfig(vocab_size=vocab, max_position_embeddings=96, **shape))
    elif kind == "distilbert":  # a head of two layers: pre_classifier and classifier
        shape = dict(dim=32, hidden_dim=64, n_layers=2, n_heads=2, max_position_embeddings=96)
        model = hf.DistilBertForMaskedLM(hf.DistilBertConfig(vocab_size=vocab, **shape))
    else:  # llama, or a Llama classifier of five classes (its head is not the run's)
        shape = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4)
        config = hf.LlamaConfig(vocab_size=vocab, max_position_embeddings=96, num_labels=5, **shape)
        model = (hf.LlamaForCausalLM if kind == "llama" else hf.LlamaForSequenceClassification)(config)
    out = tmp_path / kind
    model.save_pretrained(out)
    hf.PreTrainedTokenizerFast(tokenizer_object=tokenizer.tokenizer, pad_token="<pad>").save_pretrained(out)
    return out


def hf_classifier(tmp_path, kind: str, **finetune):
    data = write_reviews(tmp_path / "reviews.csv")
    directory = hf_directory(tmp_path, kind, data.read_text())
    config = tiny_classifier(data, init=str(directory), **finetune)
    return directory, dataclasses.replace(config, model=TransformerConfig(), train=dataclasses.replace(
        config.train, budget=16 * 4, eval_every=16 * 2))  # fmt: skip


@pytest.mark.parametrize("kind", ["llama", "gpt2", "bert", "llama-classifier"])
def test_a_hugging_face_model_trains_and_labels_texts_as_transformers_does(tmp_path, kind):
    from transformers import AutoModel, AutoModelForSequenceClassification

    directory, config = hf_classifier(tmp_path, kind)
    train(config, tmp_path / "run", progress=False)
    model, resolved = load_model(tmp_path / "run")
    assert resolved.model.context == 96 and resolved.pretrained  # the model's window: under the recipe's 128
    assert (tmp_path / "run" / "tokenizer.json").read_text() == (directory / "tokenizer.json").read_text()
    start = AutoModel.from_pretrained(directory).state_dict()
    fine = read_checkpoint(latest_checkpoint(tmp_path / "run")).modules["model"]
    prefix = f"network.{model.network.base_model_prefix}."
    assert {prefix + name for name in start} <= set(fine)  # every base weight of the directory, by its name
    assert any(not torch.equal(start[name], fine[prefix + name]) for name in start)  # and the base trains

    reference = AutoModelForSequenceClassification.from_pretrained(
        directory, num_labels=2, ignore_mismatched_sizes=True
    )
    reference.load_state_dict({name.removeprefix("network."): t for name, t in fine.items() if name != "temperature"})
    reference.eval()
    texts = ["line 3: the cat jumps, good dog 5 times.", "line 4: bad hen."]  # of different lengths: padded
    ours = FAMILIES["classifier"].logits(model, texts)
    alone = [reference(torch.tensor([model.tokenizer.encode(text)])).logits[0] for text in texts]
    assert torch.allclose(ours, torch.stack(alone), atol=1e-5)


@pytest.mark.parametrize("kind", ["llama", "distilbert"])
def test_lora_on_a_hugging_face_model_trains_the_adapters_and_the_whole_head(tmp_path, kind, capsys):
    from transformers import AutoModel

    from aigc.families.classifier.model import build

    directory, config = hf_classifier(tmp_path, kind, lora_rank=4)
    train(config, tmp_path / "run", progress=False)
    assert "trainable parameters" in capsys.readouterr().out
    _, resolved = load_model(tmp_path / "run")
    model = build(resolved)
    head = {id(p) for p in model.head().parameters()}
    assert head and all(p.requires_grad for p in model.head().parameters())
    trained = [n for n, p in model.named_parameters() if p.requires_grad and id(p) not in head]
    assert trained and all("lora_" in name for name in trained)  # the base: adapters only
    fine = read_checkpoint(latest_checkpoint(tmp_path / "run")).modules["model"]
    start = AutoModel.from_pretrained(directory).state_dict()
    prefix = f"network.{model.network.base_model_prefix}."
    frozen = [n for n in start if prefix + n in fine]
    assert frozen and all(torch.equal(start[n], fine[prefix + n]) for n in frozen)
    assert aigc(["classify", str(tmp_path / "run"), "--text", "line 1: the fox"]) == 0


def test_adversarial_training_reaches_the_embeddings_under_lora(tmp_path):
    _, config = hf_classifier(tmp_path, "llama", lora_rank=4)
    config = dataclasses.replace(config, robustness=dataclasses.replace(config.robustness, adversarial="fgm"))
    train(config, tmp_path / "run", progress=False)
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert any("adversarial_loss" in row for row in rows)


def test_a_hugging_face_model_refuses_what_it_decides(tmp_path):
    directory, config = hf_classifier(tmp_path, "gpt2")
    for change, flag in [({"head": dataclasses.replace(config.head, pooling="mean")}, "--pooling"),
                         ({"model": TransformerConfig(width=64)}, "--width"),
                         ({"model": TransformerConfig(dropout=0.1)}, "--dropout")]:  # fmt: skip
        with pytest.raises(UserError, match=f"{flag}: the model comes from --init"):
            train(dataclasses.replace(config, **change), tmp_path / "a", progress=False)
    with pytest.raises(UserError, match="--context 200: the model of --init reads at most 96 tokens"):
        train(dataclasses.replace(config, model=TransformerConfig(context=200)), tmp_path / "b", progress=False)
    bigger = TextTokenizer.from_str((directory / "tokenizer.json").read_text()).with_special_tokens(["<x>", "<y>"])
    bigger.save(directory / "tokenizer.json")  # two tokens the embedding has no rows for
    with pytest.raises(UserError, match=r"its tokenizer has \d+ tokens but the embedding \d+ rows; resize"):
        train(config, tmp_path / "c", progress=False)
    (directory / "tokenizer.json").unlink()
    with pytest.raises(UserError, match="has no tokenizer.json"):
        train(config, tmp_path / "d", progress=False)
    assert not any((tmp_path / name).exists() for name in "acd")
