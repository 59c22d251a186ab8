"""A tiny random CLIP text model and tokenizer, built from configs (no download): what a Stable Diffusion directory
or `--text-encoder DIR` holds, at a size that runs in milliseconds."""

import json

from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

CHARACTERS = "abcdefghijklmnopqrstuvwxyz0123456789"
MAX_TOKENS = 16  # positions of the text model, begin and end tokens included


def tiny_tokenizer(folder, positions: int = MAX_TOKENS) -> CLIPTokenizer:
    """A CLIP tokenizer of single characters (no merges), its files written in `folder`."""
    folder.mkdir(parents=True)
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for suffix in ("", "</w>"):
        vocab |= {c + suffix: len(vocab) + i for i, c in enumerate(CHARACTERS)}
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    return CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=positions)


def tiny_text_model(positions: int = MAX_TOKENS) -> CLIPTextModel:
    return CLIPTextModel(
        CLIPTextConfig(
            vocab_size=2 + 2 * len(CHARACTERS), hidden_size=32, intermediate_size=37, num_attention_heads=4,
            num_hidden_layers=2, max_position_embeddings=positions, bos_token_id=0, eos_token_id=1, pad_token_id=1,
        )
    )  # fmt: skip
