"""A classifier on a Hugging Face directory (`--init DIR`): transformers' own sequence classifier of the
architecture - causal LMs (Llama, GPT-2) and an encoder (BERT) - on tiny random models saved by the test, trained
by aigc and labelling texts as transformers' class does, padding included."""

import dataclasses

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
    from transformers import (
        BertConfig,
        BertForMaskedLM,
        GPT2Config,
        GPT2LMHeadModel,
        LlamaConfig,
        LlamaForCausalLM,
        PreTrainedTokenizerFast,
    )

    tokenizer = TextTokenizer.train("char", text).with_special_tokens(["<pad>"])
    vocab = tokenizer.vocab_size
    torch.manual_seed(0)
    if kind == "gpt2":
        model = GPT2LMHeadModel(GPT2Config(vocab_size=vocab, n_positions=96, n_embd=32, n_layer=2, n_head=2))
    elif kind == "bert":
        shape = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2)
        model = BertForMaskedLM(BertConfig(vocab_size=vocab, max_position_embeddings=96, **shape))
    else:
        shape = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4)
        model = LlamaForCausalLM(LlamaConfig(vocab_size=vocab, max_position_embeddings=96, **shape))
    out = tmp_path / kind
    model.save_pretrained(out)
    PreTrainedTokenizerFast(tokenizer_object=tokenizer.tokenizer, pad_token="<pad>").save_pretrained(out)
    return out


def hf_classifier(tmp_path, kind: str, **finetune):
    data = write_reviews(tmp_path / "reviews.csv")
    directory = hf_directory(tmp_path, kind, data.read_text())
    config = tiny_classifier(data, init=str(directory), **finetune)
    return directory, dataclasses.replace(config, model=TransformerConfig(), train=dataclasses.replace(
        config.train, budget=16 * 4, eval_every=16 * 2))  # fmt: skip


@pytest.mark.parametrize("kind", ["llama", "gpt2", "bert"])
def test_a_hugging_face_model_trains_and_labels_texts_as_transformers_does(tmp_path, kind):
    from transformers import AutoModelForSequenceClassification

    directory, config = hf_classifier(tmp_path, kind)
    train(config, tmp_path / "run", progress=False)
    model, resolved = load_model(tmp_path / "run")
    assert resolved.model.context == 96 and resolved.pretrained  # the model's window: under the recipe's 128
    assert (tmp_path / "run" / "tokenizer.json").read_text() == (directory / "tokenizer.json").read_text()
    base = AutoModelForSequenceClassification.from_pretrained(directory, num_labels=2).state_dict()
    fine = read_checkpoint(latest_checkpoint(tmp_path / "run")).modules["model"]
    moved = [n for n in base if not torch.equal(base[n], fine["network." + n])]
    assert any(n.startswith(model.network.base_model_prefix) for n in moved)  # the base trains, not only the head

    reference = AutoModelForSequenceClassification.from_pretrained(directory, num_labels=2)
    reference.load_state_dict({name.removeprefix("network."): t for name, t in fine.items() if name != "temperature"})
    reference.eval()
    texts = ["line 3: the cat jumps, good dog 5 times.", "line 4: bad hen."]  # of different lengths: padded
    ours = FAMILIES["classifier"].logits(model, texts)
    alone = [reference(torch.tensor([model.tokenizer.encode(text)])).logits[0] for text in texts]
    assert torch.allclose(ours, torch.stack(alone), atol=1e-5)


def test_lora_on_a_hugging_face_model_trains_the_adapters_and_the_head(tmp_path, capsys):
    directory, config = hf_classifier(tmp_path, "llama", lora_rank=4)
    train(config, tmp_path / "run", progress=False)
    assert "trainable parameters" in capsys.readouterr().out
    fine = read_checkpoint(latest_checkpoint(tmp_path / "run")).modules["model"]
    from transformers import AutoModelForCausalLM

    start = AutoModelForCausalLM.from_pretrained(directory).state_dict()
    frozen = [n for n in start if n.startswith("model.") and "network." + n in fine]
    assert frozen and all(torch.equal(start[n], fine["network." + n]) for n in frozen)
    assert any("lora_B" in name and fine[name].abs().sum() > 0 for name in fine)
    assert aigc(["classify", str(tmp_path / "run"), "--text", "line 1: the fox"]) == 0


def test_a_hugging_face_model_refuses_what_it_decides(tmp_path):
    directory, config = hf_classifier(tmp_path, "gpt2")
    for change, flag in [({"head": dataclasses.replace(config.head, pooling="mean")}, "--pooling"),
                         ({"model": TransformerConfig(width=64)}, "--width"),
                         ({"model": TransformerConfig(dropout=0.1)}, "--dropout")]:  # fmt: skip
        with pytest.raises(UserError, match=f"{flag}: the model comes from --init"):
            train(dataclasses.replace(config, **change), tmp_path / "a", progress=False)
    with pytest.raises(UserError, match="--context 200: the model of --init reads at most 96 tokens"):
        train(dataclasses.replace(config, model=TransformerConfig(context=200)), tmp_path / "b", progress=False)
    (directory / "tokenizer.json").unlink()
    with pytest.raises(UserError, match="has no tokenizer.json"):
        train(config, tmp_path / "c", progress=False)
    assert not (tmp_path / "a").exists() and not (tmp_path / "c").exists()
