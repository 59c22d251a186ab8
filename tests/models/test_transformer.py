"""The transformer: causal, shaped as documented, and its weights a Hugging Face checkpoint - transformers loads
them as LlamaForCausalLM (or Qwen3ForCausalLM with QK-norm) with no custom code and computes the same logits."""

import json

import pytest
import torch
from safetensors.torch import save_file

from aigc.core.errors import ConfigError, UserError
from aigc.models.transformer import Transformer, TransformerConfig, attend, hf_config

TINY = TransformerConfig(width=32, layers=2, heads=4, context=16, vocab_size=50)


def test_logits_have_the_documented_shape_and_the_head_is_tied():
    model = Transformer(TINY)
    assert model(torch.randint(50, (3, 10))).shape == (3, 10, 50)
    assert model.lm_head.weight is model.model.embed_tokens.weight
    untied = Transformer(TransformerConfig(width=32, layers=1, heads=4, vocab_size=50, tied_embeddings=False))
    assert untied.lm_head.weight is not untied.model.embed_tokens.weight


def test_a_future_token_cannot_change_an_earlier_logit():
    torch.manual_seed(0)
    model = Transformer(TINY).eval()
    tokens = torch.randint(50, (1, 12))
    changed = tokens.clone()
    changed[0, 7] = (tokens[0, 7] + 1) % 50
    before, after = model(tokens), model(changed)
    assert torch.equal(before[:, :7], after[:, :7]) and not torch.allclose(before[:, 7:], after[:, 7:])


def test_bad_shapes_are_refused():
    with pytest.raises(ConfigError, match="heads = 5: must divide the width 32"):
        TransformerConfig(width=32, heads=5)
    with pytest.raises(ConfigError, match="kv_heads = 3: must divide the 4 heads"):
        TransformerConfig(width=32, heads=4, kv_heads=3)
    with pytest.raises(UserError, match="17 tokens are more than the model's context of 16"):
        Transformer(TINY)(torch.zeros(1, 17, dtype=torch.long))


@pytest.mark.parametrize(
    "config",
    [
        TINY,
        TransformerConfig(width=32, layers=2, heads=4, kv_heads=2, context=16, vocab_size=50, tied_embeddings=False),
        TransformerConfig(width=32, layers=2, heads=4, kv_heads=2, context=16, vocab_size=50, qk_norm=True),
    ],
    ids=["llama", "llama-gqa-untied", "qwen3"],
)
def test_transformers_loads_the_weights_as_its_own_architecture_and_agrees(config, tmp_path):
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = Transformer(config).eval()
    with torch.no_grad():  # non-trivial norm gains, so that a misplaced norm would show
        for name, p in model.named_parameters():
            if name.endswith("norm.weight") or "layernorm" in name:
                p.add_(torch.randn_like(p) * 0.1)
    save_file(model.state_dict(), tmp_path / "model.safetensors")  # a tied head is held once, as HF holds it
    (tmp_path / "config.json").write_text(json.dumps(hf_config(config)))
    reference = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    assert type(reference).__name__ == hf_config(config)["architectures"][0]
    tokens = torch.randint(50, (2, 16))
    with torch.no_grad():
        expected = reference(tokens).logits
    assert torch.allclose(model(tokens), expected, atol=1e-4, rtol=0)


@pytest.mark.parametrize("kv_heads", [None, 2])
def test_decoding_with_the_kv_cache_equals_recomputing_the_whole_sequence(kv_heads):
    torch.manual_seed(0)
    config = TransformerConfig(width=32, layers=2, heads=4, kv_heads=kv_heads, context=16, vocab_size=50)
    model = Transformer(config).eval()
    tokens = torch.randint(50, (3, 12))
    with torch.no_grad():
        full = model(tokens)
        cache = model.new_cache(rows=3)
        steps = [model(tokens[:, :5], cache)]  # the prompt in one pass, then one token at a time
        steps += [model(tokens[:, i : i + 1], cache) for i in range(5, 10)]
        steps.append(model(tokens[:, 10:], cache))  # and two at once
    assert cache.length() == 12
    assert torch.allclose(torch.cat(steps, dim=1), full, atol=1e-5, rtol=0)
    with pytest.raises(UserError, match="17 tokens are more than the model's context of 16"):
        model(torch.zeros(3, 5, dtype=torch.long), cache)


@pytest.mark.parametrize("kv_heads", [None, 2])
def test_a_pass_over_slots_of_different_lengths_equals_each_sequence_alone(kv_heads):
    config = TransformerConfig(width=32, layers=2, heads=4, kv_heads=kv_heads, context=16, vocab_size=50)
    model = Transformer(config).eval()
    sequences = [torch.randint(50, (n,)).tolist() for n in (3, 9, 6)]  # prompts of their own lengths
    slots = model.kv_slots(3)
    with torch.no_grad():
        longest = max(len(s) for s in sequences)
        padded = torch.tensor([s + [0] * (longest - len(s)) for s in sequences])  # one pass, padded
        logits = model.extend(slots, 0, padded, [len(s) for s in sequences])
        assert torch.allclose(logits, torch.cat([model(torch.tensor([s]))[:, -1] for s in sequences]), atol=1e-5)
        for _ in range(4):  # four steps of one new token each, all three sequences in one pass
            new = torch.randint(50, (3,))
            logits = model.extend(slots, 0, new[:, None], [1, 1, 1])
            sequences = [s + [int(t)] for s, t in zip(sequences, new, strict=True)]
            alone = torch.cat([model(torch.tensor([s]))[:, -1] for s in sequences])
            assert torch.allclose(logits, alone, atol=1e-5, rtol=0)
        slots.move(2, 0)  # a sequence that leaves is replaced by another, which decodes on from its new slot
        new = torch.randint(50, (1,))
        moved = model.extend(slots, 0, new[:, None], [1])
        assert torch.allclose(moved, model(torch.tensor([sequences[2] + [int(new)]]))[:, -1], atol=1e-5)
    assert [slots.length(i) for i in range(3)] == [11, 13, 0]


def test_dropout_acts_in_training_only_and_adds_no_weight():
    torch.manual_seed(0)
    plain = Transformer(TransformerConfig(width=32, layers=1, heads=2, context=16, vocab_size=20))
    torch.manual_seed(0)
    dropped = Transformer(TransformerConfig(width=32, layers=1, heads=2, context=16, vocab_size=20, dropout=0.5))
    assert plain.state_dict().keys() == dropped.state_dict().keys()  # so the export is the same architecture
    tokens = torch.randint(0, 20, (2, 8))
    with torch.no_grad():
        assert torch.equal(plain.eval()(tokens), dropped.eval()(tokens))
        assert not torch.equal(dropped.train()(tokens), dropped(tokens))


def test_bf16_attention_on_a_cpu_is_computed_in_fp32_and_returned_in_bf16():
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 4, 16, 8) for _ in range(3))
    exact = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
    low = [t.bfloat16().requires_grad_() for t in (q, k, v)]
    with torch.autocast("cpu", torch.bfloat16):
        y = attend(*low, is_causal=True)
    y.float().sum().backward()
    assert y.dtype == torch.bfloat16 and all(t.grad.dtype == torch.bfloat16 for t in low)
    # the same as fp32 attention of the bf16 inputs, rounded once at the end (autocast rounds the scores too)
    of_rounded_inputs = torch.nn.functional.scaled_dot_product_attention(
        *(t.detach().float() for t in low), is_causal=True
    )
    assert torch.equal(y, of_rounded_inputs.bfloat16())
    assert (y.float() - exact).abs().max() < 0.05
