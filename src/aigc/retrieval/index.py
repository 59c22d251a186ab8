"""A search index of question-answer pairs: BM25 (Robertson and Zaragoza 2009) over the pairs' questions, by the
bm25s library (Lucene's scoring: k1 = 1.5, b = 0.75), the pairs kept beside it; with an `encoder` (an aigc
language-model run) also a dense index - each question's unit vector, the mean of its tokens' last-layer states
(families/text.py:embed) - whose cosine ranking is fused with BM25's by reciprocal rank fusion (Cormack et al.
2009: a pair scores the sum of 1 / (60 + its rank) in each ranking).

A directory holds it: `index.json` (what it indexes and how), `pairs.jsonl` (id, question, answer, intent per
line), `bm25/` (bm25s's own arrays and vocabulary, saved without pickle) and `dense.safetensors`. Loading reads
them as saved: the corpus is not tokenised or encoded again. Words are bm25s's: lower-cased runs of two or more
word characters, English stop words left out; a word the index has never seen scores nothing.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from aigc.core.errors import UserError
from aigc.core.io import read_manifest
from aigc.data.support import Pair

FORMAT = 1  # of index.json: a directory of another format is refused, not misread
STOPWORDS = "en"
RRF_K = 60  # reciprocal rank fusion's constant (Cormack et al. 2009)
FUSED = 100  # the depth of each ranking that fusion reads
MAX_HEADER = 100_000_000  # the largest safetensors header (the format's own limit)


@dataclass(frozen=True)
class Hit:
    pair: Pair
    score: float  # BM25's; fused: reciprocal rank fusion's
    rank: int  # 1 for the best
    scores: dict[str, float]  # each ranking's own score of the pair (bm25, dense cosine) where it ranked it


def bm25s():
    try:
        import bm25s
    except ImportError:
        raise UserError("the search index needs bm25s; pip install 'aigc[assistant]'") from None
    return bm25s


def words(texts: list[str]) -> list[list[str]]:
    return bm25s().tokenize(texts, stopwords=STOPWORDS, return_ids=False, show_progress=False)


class Index:
    def __init__(self, pairs: list[Pair], bm25, source: str, dense: Dense | None = None):
        self.pairs, self.bm25, self.source, self.dense = pairs, bm25, source, dense

    @classmethod
    def build(cls, pairs: list[Pair], source: str, encoder: Path | None = None) -> Index:
        """The index of `pairs` (from `source`: a data set and split, as the index records it), with a dense
        index by the language-model run (or checkpoint) `encoder` when one is given."""
        if not pairs:
            raise UserError(f"{source}: no pairs to index")
        bm25 = bm25s().BM25()
        bm25.index(bm25s().tokenize([pair.question for pair in pairs], stopwords=STOPWORDS, show_progress=False),
                   show_progress=False)  # fmt: skip
        dense = None
        if encoder is not None:
            dense = Dense.of(encoder)
            dense.vectors = dense.embed([pair.question for pair in pairs])
        return cls(pairs, bm25, source, dense)

    def save(self, out: Path) -> None:
        """The index as a directory (replacing the files of one there)."""
        from safetensors import SafetensorError
        from safetensors.torch import save_file

        try:
            out.mkdir(parents=True, exist_ok=True)
            self.bm25.save(out / "bm25", show_progress=False)
            with open(out / "pairs.jsonl", "w", encoding="utf-8") as f:
                f.writelines(json.dumps(asdict(pair), ensure_ascii=False) + "\n" for pair in self.pairs)
            manifest = {"format": FORMAT, "kind": "bm25", "source": self.source, "pairs": len(self.pairs)}
            if self.dense is not None:
                save_file({"vectors": self.dense.vectors.contiguous()}, out / "dense.safetensors")
                manifest |= {"kind": "bm25+dense", "encoder": str(self.dense.checkpoint)}
                manifest["encoder_fingerprint"] = fingerprint(self.dense.checkpoint)
            (out / "index.json").write_text(json.dumps(manifest, indent=2) + "\n")
        except (OSError, SafetensorError) as error:
            raise UserError(f"cannot write the index to {out} ({error}); choose a writable --out") from None

    @classmethod
    def load(cls, path: Path) -> Index:
        """The index in directory `path`, with its encoder when it has one; UserError when it is not an index,
        is not whole, or its encoder is gone."""
        manifest = read_manifest(path, "index.json", FORMAT, "a search index", "build it with aigc index build")
        try:
            lines = (path / "pairs.jsonl").read_text(encoding="utf-8").splitlines()
            pairs = [Pair(**json.loads(line)) for line in lines]
            bm25 = bm25s().BM25.load(path / "bm25", show_progress=False)
        except (OSError, ValueError, TypeError, KeyError) as error:
            raise UserError(f"{path}: the index is incomplete or damaged ({error}); build it again") from None
        dense = Dense.read(path, manifest) if "encoder" in manifest else None
        rows = {len(pairs), bm25.scores["num_docs"], *([len(dense.vectors)] if dense else [])}
        if rows != {manifest.get("pairs")}:
            raise UserError(f"{path}: its pairs and its arrays disagree; build the index again")
        return cls(pairs, bm25, manifest.get("source", ""), dense)

    def query(self, texts: list[str], k: int) -> list[list[Hit]]:
        """The `k` pairs that best match each text: by BM25 (only pairs that share a word with it, so possibly
        fewer), or fused with the dense ranking when the index has one."""
        if not texts:
            return []
        k = min(k, len(self.pairs))
        depth = k if self.dense is None else min(len(self.pairs), max(k, FUSED))
        found, scores = self.bm25.retrieve(words(texts), k=depth, show_progress=False)
        # a pair BM25 scores 0 shares no word with the text: it is not in BM25's ranking at all
        rankings = [{"bm25": {int(i): float(score) for i, score in zip(row, row_scores, strict=True) if score > 0}}
                    for row, row_scores in zip(found, scores, strict=True)]  # fmt: skip
        if self.dense is not None:
            similarity = self.dense.embed(texts) @ self.dense.vectors.T
            best = similarity.topk(depth, dim=1)
            for ranking, ids, values in zip(rankings, best.indices, best.values, strict=True):
                ranking["dense"] = dict(zip(ids.tolist(), values.tolist(), strict=True))
        return [self.hits(ranking, k) for ranking in rankings]

    def hits(self, ranking: dict[str, dict[int, float]], k: int) -> list[Hit]:
        """The best `k` of one text's rankings ({retriever: {pair index: score}, best first}), fused when there
        are several."""
        if len(ranking) == 1:
            scored = ranking["bm25"]
        else:
            scored = {}
            for found in ranking.values():
                for place, i in enumerate(found, 1):
                    scored[i] = scored.get(i, 0.0) + 1.0 / (RRF_K + place)
        chosen = sorted(scored, key=lambda i: -scored[i])[:k]
        return [
            Hit(self.pairs[i], scored[i], rank, {name: found[i] for name, found in ranking.items() if i in found})
            for rank, i in enumerate(chosen, 1)
        ]


class Dense:
    """The dense half of an index: the encoder (a language-model checkpoint) and the questions' vectors."""

    def __init__(self, checkpoint: Path, model, family, vectors=None):
        self.checkpoint, self.model, self.family, self.vectors = checkpoint, model, family, vectors

    @classmethod
    def of(cls, encoder: Path) -> Dense:
        """The encoder in run directory (or checkpoint) `encoder`; UserError unless it writes text."""
        from aigc.families.registry import checkpoint_path, family_of, load_model

        if not encoder.exists():
            raise UserError(f"encoder {encoder} does not exist; give a language-model run (aigc train lm)")
        checkpoint = checkpoint_path(encoder).resolve()
        model, config = load_model(checkpoint)
        family = family_of(config)
        if family.modality != "text":
            raise UserError(f"encoder {encoder} is a {family.name} run; give a language-model run (aigc train lm)")
        return cls(checkpoint, model, family)

    @classmethod
    def read(cls, directory: Path, manifest: dict) -> Dense:
        """The dense half of the index in `directory`, its encoder loaded; UserError when the encoder is gone or
        is no longer the checkpoint the questions were encoded by."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        encoder = Path(manifest["encoder"])
        found = fingerprint(encoder) if encoder.is_file() else ""
        if not found or found != manifest.get("encoder_fingerprint"):
            raise UserError(
                f"{directory} was encoded by {encoder}, which is gone or has changed since; build the index again"
            )
        dense = cls.of(encoder)
        try:
            dense.vectors = load_file(directory / "dense.safetensors")["vectors"]
        except (OSError, SafetensorError, KeyError) as error:
            raise UserError(f"{directory}: the index is incomplete or damaged ({error}); build it again") from None
        return dense

    def embed(self, texts: list[str]):
        return self.family.embed(self.model, texts)


def fingerprint(checkpoint: Path) -> str:
    """A digest of a checkpoint file's safetensors header (its tensors' names, shapes and offsets, and its
    metadata: the run config and step), size and modification time, which changes when another file takes its
    place; "" when it cannot be read as one."""
    import hashlib
    import struct

    try:
        with open(checkpoint, "rb") as f:
            (size,) = struct.unpack("<Q", f.read(8))
            if size > MAX_HEADER:
                return ""
            header = f.read(size)
        stat = checkpoint.stat()
    except (OSError, struct.error):
        return ""
    return hashlib.sha256(header + f"|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()


def index_fingerprint(directory: Path) -> str:
    """A digest of an index directory's manifest and the size and modification time of each of its files, which
    changes when it is built again; "" when it is not there."""
    import hashlib

    try:
        files = sorted(path for path in Path(directory).rglob("*") if path.is_file())
        stamps = [f"{path.relative_to(directory)}|{path.stat().st_size}|{path.stat().st_mtime_ns}" for path in files]
        manifest = (Path(directory) / "index.json").read_bytes()
    except OSError:
        return ""
    return hashlib.sha256(manifest + "\n".join(stamps).encode()).hexdigest()
