"""Fine-tuning a language model: from an aigc run or a Hugging Face directory (tiny random transformers models
built from configs here, no download), every weight or LoRA adapters through peft; exact resumption; the
export merged or as a peft adapter over the base, both agreeing with aigc's own logits; bad inputs as one line."""

import json
import shutil

import pytest
import torch
from safetensors import safe_open
from tests.conftest import write_chat

from aigc.cli import main as aigc
from aigc.core.checkpoint import latest_checkpoint
from aigc.data.tokenizer import TextTokenizer
from aigc.families.registry import load_model

FT = ["--tokens", "1k", "--snapshot-tokens", "512", "--batch", "4", "--context", "32", "--no-progress"]


def tensors(path):
    with safe_open(str(path), framework="pt") as f:
        return {key: f.get_tensor(key) for key in f.keys()}


def logits(model, ids):
    with torch.no_grad():
        return model(ids)


@pytest.fixture(scope="module")
def other_text(tmp_path_factory):
    """Fine-tuning data in the alphabet of the lm_run's text (a character model refuses unknown characters)."""
    path = tmp_path_factory.mktemp("ft") / "other.txt"
    path.write_text("".join(f"line {i}: the owl jumps over the cat, {i % 5} times.\n" for i in range(200)))
    return path


def test_lora_on_an_aigc_run_trains_the_adapters_alone_and_exports_merged_or_as_a_peft_adapter(
    tmp_path, lm_run, other_text, capsys
):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    run = tmp_path / "lora"
    argv = ["train", "lm", "--init", str(lm_run), "--lora-rank", "4", "--data", f"text:{other_text}", "--out", str(run)]
    assert aigc([*argv, *FT, "--lr", "1e-2"]) == 0
    out = capsys.readouterr().out
    assert "trainable parameters: " in out and "%)" in out
    config = json.loads((run / "config.json").read_text())["finetune"]
    assert (
        config["lora_alpha"] == 8.0 and "q_proj" in config["lora_targets"] and "lm_head" not in config["lora_targets"]
    )

    base, tuned = tensors(latest_checkpoint(lm_run)), tensors(latest_checkpoint(run))
    frozen = {k: v for k, v in tuned.items() if "lora_" not in k}
    for name, tensor in frozen.items():  # every base weight as the init left it
        assert torch.equal(tensor, base[name.replace(".base_layer", "")]), name
    assert any(v.abs().sum() > 0 for k, v in tuned.items() if "lora_B" in k)  # B starts at zero: it trained

    model, _ = load_model(run)
    ids = torch.tensor([model.tokenizer.encode("line 3: the owl")])
    expected = logits(model, ids)
    merged, unmerged = tmp_path / "merged", tmp_path / "unmerged"
    assert aigc(["export", str(run), "--out", str(merged), "--merge-lora"]) == 0
    assert aigc(["export", str(run), "--out", str(unmerged)]) == 0
    assert {p.name for p in (unmerged / "adapter").iterdir()} == {"adapter_config.json", "adapter_model.safetensors"}
    hf = AutoModelForCausalLM.from_pretrained(merged).eval()
    assert torch.allclose(logits(hf, ids).logits, expected, atol=1e-4)
    over_base = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(unmerged), unmerged / "adapter")
    assert torch.allclose(logits(over_base.eval(), ids).logits, expected, atol=1e-4)
    assert not torch.allclose(logits(AutoModelForCausalLM.from_pretrained(unmerged), ids).logits, expected, atol=1e-3)
    in_run = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(unmerged), run / "checkpoints" / "adapter")
    assert torch.allclose(logits(in_run.eval(), ids).logits, expected, atol=1e-4)  # the run's own adapter files
    assert aigc(["compress", str(run), "--quantize", "bf16", "--out", str(tmp_path / "bf16")]) == 0  # adapters merged
    compressed, config = load_model(tmp_path / "bf16")
    assert config.finetune.lora_rank == 0 and torch.allclose(logits(compressed, ids).float(), expected, atol=0.1)


def test_a_resumed_lora_run_ends_bit_identical_to_one_never_stopped(tmp_path, lm_run, other_text):
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    argv = ["train", "lm", "--init", str(lm_run), "--lora-rank", "2", "--data", f"text:{other_text}", *FT]
    assert aigc([*argv, "--out", str(straight)]) == 0
    final = latest_checkpoint(straight)
    shutil.copytree(straight, stopped)
    for path in (stopped / "checkpoints").glob(f"{final.name.split('.')[0]}*"):
        path.unlink()
    shutil.move(lm_run, tmp_path / "moved")  # a resumed run reads its own checkpoint, not the init
    try:
        assert aigc(["train", "lm", "--resume", str(stopped), "--no-progress"]) == 0
    finally:
        shutil.move(tmp_path / "moved", lm_run)
    ours, theirs = tensors(latest_checkpoint(stopped)), tensors(final)
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)


def hf_directory(tmp_path, kind: str, text: str):
    """A tiny random transformers causal LM of architecture `kind`, saved with a fast tokenizer."""
    from transformers import (
        GPT2Config,
        GPT2LMHeadModel,
        LlamaConfig,
        LlamaForCausalLM,
        PreTrainedTokenizerFast,
        Qwen2Config,
        Qwen2ForCausalLM,
    )

    tokenizer = TextTokenizer.train("char", text)
    vocab = tokenizer.vocab_size
    torch.manual_seed(0)
    if kind == "gpt2":
        model = GPT2LMHeadModel(GPT2Config(vocab_size=vocab, n_positions=64, n_embd=32, n_layer=2, n_head=2))
    else:
        shape = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4)
        shape.update(num_key_value_heads=2, max_position_embeddings=64, vocab_size=vocab)
        if kind == "llama":
            model = LlamaForCausalLM(LlamaConfig(**shape))
        else:  # q/k/v biases: an architecture aigc's transformer is not
            model = Qwen2ForCausalLM(Qwen2Config(**shape))
    out = tmp_path / kind
    model.save_pretrained(out)
    PreTrainedTokenizerFast(tokenizer_object=tokenizer.tokenizer).save_pretrained(out)
    return out, model.eval()


@pytest.mark.parametrize("kind", ["gpt2", "llama", "qwen2"])
def test_a_hugging_face_directory_fine_tunes_samples_and_exports_as_itself(tmp_path, other_text, kind, capsys):
    from transformers import AutoModelForCausalLM

    directory, reference = hf_directory(tmp_path, kind, other_text.read_text())
    run = tmp_path / "run"
    flags = ["--lora-rank", "4"] if kind == "llama" else []
    argv = ["train", "lm", "--init", str(directory), "--data", f"text:{other_text}", *flags, "--out", str(run)]
    assert aigc([*argv, *FT, "--optimizer", "adamw", "--lr", "1e-2"]) == 0
    capsys.readouterr()
    model, config = load_model(run)
    assert json.loads(config.pretrained)["model_type"] == kind
    ids = torch.tensor([model.tokenizer.encode("line 7: the owl")])
    tuned = logits(model, ids)
    assert not torch.allclose(tuned, logits(reference, ids).logits, atol=1e-3)  # it trained

    assert aigc(["sample", str(run), "--prompt", "line ", "--max-tokens", "12", "--seed", "0"]) == 0
    assert capsys.readouterr().out.startswith("line ")
    out = tmp_path / "export"
    assert aigc(["export", str(run), "--out", str(out), *(["--merge-lora"] if flags else [])]) == 0
    exported = AutoModelForCausalLM.from_pretrained(out).eval()
    assert type(exported) is type(reference)
    assert torch.allclose(logits(exported, ids).logits, tuned, atol=1e-4)


def test_the_init_weights_are_the_directory_s_to_the_last_logit(tmp_path, other_text):
    from aigc.families.lm.config import LMRunConfig
    from aigc.families.lm.init import from_init, init_weights
    from aigc.families.lm.model import base
    from aigc.families.registry import family
    from aigc.training.finetune import FinetuneConfig

    lm = family("lm")
    directory, reference = hf_directory(tmp_path, "gpt2", other_text.read_text())
    config = from_init(LMRunConfig(finetune=FinetuneConfig(init=str(directory))), lm.new_config().model)
    model = base(config)
    model.load_state_dict(init_weights(config))
    ids = torch.tensor([model.tokenizer.encode("line 1: the cat")])
    assert torch.allclose(logits(model.eval(), ids), logits(reference, ids).logits, atol=1e-5)
    cache = model.new_cache()  # decoding a token at a time through transformers' cache gives the same logits
    steps = torch.cat([model(ids[:, i : i + 1], cache) for i in range(ids.shape[1])], dim=1)
    assert torch.allclose(steps, logits(reference, ids).logits, atol=1e-4)


def test_every_bad_fine_tuning_input_is_one_line_and_exit_2(tmp_path, lm_run, other_text, capsys):
    pickled = tmp_path / "pickled"
    directory, _ = hf_directory(tmp_path, "gpt2", other_text.read_text())
    shutil.copytree(directory, pickled)
    (pickled / "model.safetensors").rename(pickled / "pytorch_model.bin")
    encoder = tmp_path / "encoder"
    encoder.mkdir()
    (encoder / "config.json").write_text(json.dumps({"model_type": "clip_vision_model"}))
    (encoder / "model.safetensors").write_bytes(b"")
    (encoder / "tokenizer.json").write_text("{}")
    data = ["--data", f"text:{other_text}", *FT, "--out", str(tmp_path / "new")]
    capsys.readouterr()  # what saving the directory printed
    cases = [
        (["--init", str(tmp_path / "nowhere")], "no config.json there"),
        (["--init", str(pickled)], "holds pickled weights (pytorch_model.bin)"),
        (["--init", str(encoder)], "not a causal language model"),
        (["--lora-rank", "4"], "adapts pretrained weights; give --init"),
        (["--init", str(lm_run), "--width", "64"], "--width: the model comes from --init"),
        (["--init", str(lm_run), "--lora-rank", "2", "--lora-targets", "wq"], "--lora-targets wq: no such module"),
        (["--init", str(lm_run), "--context", "64"], "--context 64: this model reads at most 32 tokens"),
    ]
    for flags, message in cases:
        assert aigc(["train", "lm", *data, *flags]) == 2, flags
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and "\n" not in err and message in err, (flags, err)
    assert aigc(["export", str(lm_run), "--out", str(tmp_path / "out"), "--merge-lora"]) == 2
    assert "this run has no LoRA adapters" in capsys.readouterr().err
    assert not (tmp_path / "new" / "checkpoints").exists()


# Chat data ------------------------------------------------------------------------------------------------


def test_chatml_counts_each_assistant_turn_with_its_end_marker_and_a_completion_with_the_eos():
    from aigc.data.chat import CHATML, ChatFormat, spans

    chat = ChatFormat(CHATML, "", "<|im_end|>")
    row = {
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "yo"},
            {"role": "user", "content": "and?"},
            {"role": "assistant", "content": "so"},
        ]
    }
    text, counted = spans(chat, row)
    assert text.startswith("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n")
    assert [text[a:b] for a, b in counted] == ["yo<|im_end|>\n", "so<|im_end|>\n"]
    text, counted = spans(chat, {"prompt": "Q: 2+2?", "completion": " 4"})
    assert text == "Q: 2+2? 4<|im_end|>" and [text[a:b] for a, b in counted] == [" 4<|im_end|>"]


def test_the_prompt_s_tokens_carry_no_gradient():
    from aigc.data.chat import CHATML, ChatFormat, chat_examples
    from aigc.families.lm.trainer import next_token_loss

    tokenizer = TextTokenizer.train("char", "usersystemassistant\nhi yo and so").with_special_tokens(
        ["<|im_start|>", "<|im_end|>"]
    )
    chat = ChatFormat(CHATML, "", "<|im_end|>")
    row = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}
    examples = chat_examples(tokenizer, chat, [row], 48)
    ids, counted = examples[0, 0], examples[0, 1]
    logits = torch.zeros(1, 47, tokenizer.vocab_size, requires_grad=True)
    next_token_loss(lambda tokens: logits, examples).backward()
    predicts_counted = counted[1:].bool()  # logits at t predict token t + 1
    assert logits.grad[0, ~predicts_counted].abs().sum() == 0
    assert (logits.grad[0, predicts_counted].abs().sum(-1) > 0).all()
    counted_text = tokenizer.decode(ids[counted.bool()].tolist())
    assert counted_text == "yo\n"  # "yo", the end marker (a special token: not decoded) and the newline


def test_a_chat_fine_tune_adds_the_template_s_markers_and_scores_the_assistant_s_tokens(tmp_path, lm_run, capsys):
    conversations = write_chat(tmp_path / "chat.jsonl")
    run = tmp_path / "chat"
    argv = ["train", "lm", "--init", str(lm_run), "--data", f"chat:{conversations}", "--lora-rank", "4"]
    flags = ["--tokens", "2k", "--snapshot-tokens", "1k", "--batch", "4", "--no-progress", "--lr", "2e-2"]
    assert aigc([*argv, *flags, "--eval-every", "512", "--out", str(run)]) == 0
    capsys.readouterr()
    config = json.loads((run / "config.json").read_text())
    base = json.loads((lm_run / "config.json").read_text())
    assert "<|im_start|>" in config["chat_template"] and config["eos_token"] == "<|im_end|>"
    assert config["model"]["vocab_size"] == base["model"]["vocab_size"] + 2
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    scored = [r["val_loss"] for r in rows if "val_loss" in r]
    assert len(scored) >= 3 and scored[-1] < scored[0]
    assert aigc(["eval", str(run), "--json", "--n", "2"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["reference"] == f"chat:{conversations}/validation" and report["conversations"] == 4
    assert report["val_loss"] == pytest.approx(scored[-1], rel=1e-5)  # the in-loop score is the same number


def test_a_hugging_face_tokenizer_s_own_chat_template_is_kept(tmp_path, other_text):
    from aigc.data.text import TextDataConfig
    from aigc.families.lm.config import LMRunConfig
    from aigc.families.registry import family
    from aigc.training.finetune import FinetuneConfig

    directory, _ = hf_directory(tmp_path, "llama", other_text.read_text())
    template = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    settings = json.loads((directory / "tokenizer_config.json").read_text())
    (directory / "tokenizer_config.json").write_text(json.dumps({**settings, "chat_template": template}))
    conversations = write_chat(tmp_path / "chat.jsonl", rows=8)
    config = LMRunConfig(
        data=TextDataConfig(name=f"chat:{conversations}"), finetune=FinetuneConfig(init=str(directory))
    )
    resolved, data = family("lm").training_data(config)
    assert resolved.chat_template == template and "<|im_start|>" not in resolved.tokenizer
    assert data.examples.shape[1:] == (2, resolved.model.context + 1)


def test_every_bad_chat_file_is_one_line_and_exit_2(tmp_path, lm_run, capsys):
    cases = {
        "missing.jsonl": (None, "does not exist"),
        "broken.jsonl": ('{"messages": [', ":1: not a JSON line"),
        "silent.jsonl": ('{"messages": [{"role": "user", "content": "hi"}]}', "no assistant message"),
        "roles.jsonl": ('{"messages": [{"role": "robot", "content": "hi"}]}', 'needs a "role"'),
        "empty.jsonl": ("\n", "holds no conversations"),
    }
    for name, (text, message) in cases.items():
        if text is not None:
            (tmp_path / name).write_text(text)
        argv = ["train", "lm", "--init", str(lm_run), "--data", f"chat:{tmp_path / name}", "--out", str(tmp_path / "x")]
        assert aigc([*argv, "--tokens", "1k", "--no-progress"]) == 2, name
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and "\n" not in err and message in err, (name, err)


def test_an_lm_run_written_before_the_one_train_config_still_initialises_a_fine_tune(tmp_path, lm_run):
    """--init reads a run of config format 2, whose train config counted in tokens under its own names."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    from aigc.core.checkpoint import latest_checkpoint
    from aigc.families.lm.init import init_checkpoint
    from aigc.training.config import UNITS

    source = latest_checkpoint(lm_run)
    with safe_open(source, "pt") as f:
        metadata, tensors = f.metadata(), {name: f.get_tensor(name) for name in f.keys()}
    config = json.loads(metadata["config"])
    tokens = UNITS["tok"]
    former = {new: old for old, new in tokens.renamed.items()}
    former.update({name: amount.name for name, amount in tokens.amounts.items()})
    config["train"] = {former.get(key, key): value for key, value in config["train"].items()}
    config["format_version"] = 2
    assert "tokens" in config["train"] and "schedule" in config["train"] and "budget" not in config["train"]
    old = tmp_path / "old" / "checkpoints"
    old.mkdir(parents=True)
    save_file(tensors, old / source.name, metadata={**metadata, "config": json.dumps(config)})
    assert init_checkpoint(old.parent).config == init_checkpoint(lm_run).config


def test_bitext_trains_a_chat_model_on_its_requests_and_replies(tmp_path, capsys):
    from aigc.data.chat import chat_splits
    from aigc.data.support import read_pairs
    from conftest import write_bitext

    write_bitext(tmp_path / "data")
    data = str(tmp_path / "data")
    train_rows, validation_rows = chat_splits("bitext", data)
    pairs = read_pairs("bitext", data)
    assert [row["messages"][0]["content"] for row in validation_rows] == [p.question for p in pairs["validation"]]
    assert train_rows[0]["messages"][1] == {"role": "assistant", "content": pairs["train"][0].answer}
    run = tmp_path / "run"
    argv = ["train", "lm", "--data", "bitext", "--data-dir", data, "--tokens", "2k", "--width", "32", "--layers", "1",
            "--heads", "2", "--context", "96", "--batch", "4", "--out", str(run), "--no-progress"]  # fmt: skip
    assert aigc(argv) == 0
    assert aigc(["eval", str(run), "--metrics", "val_loss", "--json"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["reference"] == "bitext/validation" and report["val_loss"] > 0
    assert aigc(["sample", str(run), "--prompt", "how do I", "--max-tokens", "8"]) == 0
