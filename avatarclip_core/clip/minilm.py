"""The packaged sentence model (all-MiniLM-L6-v2: a 6-layer BERT, mean pooling, unit norm) in plain torch.

Loading it through sentence-transformers imports transformers, scikit-learn and more: 3-4 s of CPU
before the first sentence, most of what the create job's body words cost. The model is small and
standard, so this module runs the same forward pass from the folder's own files (config.json,
model.safetensors, tokenizer.json via the `tokenizers` library) with the same steps as
sentence-transformers' Transformer -> Pooling(mean) -> Normalize and its `encode(normalize_embeddings=True)`:
embeddings agree to float32 rounding (tests/test_text_encoder.py). A folder laid out otherwise (another
architecture, pooling or module list) is not read here: `load_minilm` returns None and the caller uses
sentence-transformers.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F

_MODULES = ["sentence_transformers.models.Transformer", "sentence_transformers.models.Pooling",
            "sentence_transformers.models.Normalize"]


def _readable(path: Path) -> dict | None:
    """The folder's settings when it is the standard BERT + mean pooling + normalize layout, else None."""
    try:
        modules = json.loads((path / "modules.json").read_text())
        config = json.loads((path / "config.json").read_text())
        pooling = json.loads((path / "1_Pooling" / "config.json").read_text())
        st_config = json.loads((path / "sentence_bert_config.json").read_text())
    except (OSError, ValueError):
        return None
    if [m.get("type") for m in modules] != _MODULES or [m.get("path") for m in modules][:2] != ["", "1_Pooling"]:
        return None
    modes = [k for k, v in pooling.items() if k.startswith("pooling_mode") and v]
    if (config.get("model_type") != "bert" or config.get("hidden_act") != "gelu"
            or config.get("position_embedding_type", "absolute") != "absolute" or modes != ["pooling_mode_mean_tokens"]
            or st_config.get("do_lower_case") or not (path / "tokenizer.json").is_file()
            or not (path / "model.safetensors").is_file()):
        return None
    return {**config, "max_seq_length": int(st_config.get("max_seq_length") or config["max_position_embeddings"])}


class MiniLM:
    """`encode(texts) -> (N, D)` unit-norm sentence embeddings, as SentenceTransformer(path).encode(...,
    normalize_embeddings=True) computes them (one padded batch per `batch_size` texts, longest first)."""

    def __init__(self, path: Path, config: dict, device: str = "cpu"):
        from safetensors.torch import load_file
        from tokenizers import Tokenizer

        self.config, self.device = config, torch.device(device)
        weights = load_file(str(path / "model.safetensors"), device=str(self.device))
        prefix = "bert." if any(k.startswith("bert.") for k in weights) else ""
        self.w = {k[len(prefix):]: v.float() for k, v in weights.items() if k.startswith(prefix)}
        self.heads, self.layers = int(config["num_attention_heads"]), int(config["num_hidden_layers"])
        self.eps = float(config["layer_norm_eps"])
        self.max_length = min(self.config["max_seq_length"], int(config["max_position_embeddings"]))
        tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        tokenizer.enable_truncation(max_length=self.max_length, strategy="longest_first")
        pad_id = int(config.get("pad_token_id") or 0)
        tokenizer.enable_padding(pad_id=pad_id, pad_token=tokenizer.id_to_token(pad_id) or "[PAD]")
        self.tokenizer = tokenizer

    def get_sentence_embedding_dimension(self) -> int:
        return int(self.config["hidden_size"])

    def _linear(self, x: torch.Tensor, name: str) -> torch.Tensor:
        return F.linear(x, self.w[name + ".weight"], self.w[name + ".bias"])

    def _norm(self, x: torch.Tensor, name: str) -> torch.Tensor:
        return F.layer_norm(x, x.shape[-1:], self.w[name + ".weight"], self.w[name + ".bias"], self.eps)

    @torch.no_grad()
    def forward(self, ids: torch.Tensor, types: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, T) token ids, token types, attention mask -> (B, D) mean-pooled, unit-norm embeddings."""
        B, T = ids.shape
        w = self.w
        positions = torch.arange(T, device=ids.device)[None]
        h = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.token_type_embeddings.weight"][types]
        h = self._norm(h + w["embeddings.position_embeddings.weight"][positions], "embeddings.LayerNorm")
        # padded keys are left out of every softmax (an additive -inf-like mask, as transformers builds it)
        bias = None if bool(mask.all()) else (
            (1.0 - mask[:, None, None, :].to(h.dtype)) * torch.finfo(h.dtype).min)
        D = h.shape[-1]
        hd = D // self.heads
        for i in range(self.layers):
            name = f"encoder.layer.{i}"

            def split(x):
                return x.view(B, T, self.heads, hd).transpose(1, 2)

            q = split(self._linear(h, f"{name}.attention.self.query"))
            k = split(self._linear(h, f"{name}.attention.self.key"))
            v = split(self._linear(h, f"{name}.attention.self.value"))
            context = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=0.0,
                                                     scale=1.0 / math.sqrt(hd))
            context = context.transpose(1, 2).reshape(B, T, D)
            h = self._norm(self._linear(context, f"{name}.attention.output.dense") + h, f"{name}.attention.output.LayerNorm")
            inner = F.gelu(self._linear(h, f"{name}.intermediate.dense"))
            h = self._norm(self._linear(inner, f"{name}.output.dense") + h, f"{name}.output.LayerNorm")
        weights = mask[..., None].to(h.dtype)
        mean = (h * weights).sum(dim=1, dtype=h.dtype) / torch.clamp(weights.sum(dim=1, dtype=h.dtype), min=1e-9)
        return F.normalize(mean, p=2, dim=-1)  # the model's Normalize module

    def encode(self, texts: Sequence[str], batch_size: int = 64, convert_to_tensor: bool = True,
               normalize_embeddings: bool = True, show_progress_bar: bool = False) -> torch.Tensor:
        texts = list(texts)
        # longest first, as sentence-transformers batches (by character count), then back in input order
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        out: list[torch.Tensor] = [None] * len(texts)  # type: ignore[list-item]
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            encodings = self.tokenizer.encode_batch([texts[i] for i in chunk])
            ids = torch.tensor([e.ids for e in encodings], dtype=torch.long, device=self.device)
            types = torch.tensor([e.type_ids for e in encodings], dtype=torch.long, device=self.device)
            mask = torch.tensor([e.attention_mask for e in encodings], dtype=torch.long, device=self.device)
            emb = self.forward(ids, types, mask)
            if normalize_embeddings:
                emb = F.normalize(emb, p=2, dim=1)
            for i, row in zip(chunk, emb):
                out[i] = row
        return torch.stack(out) if out else torch.zeros(0, self.get_sentence_embedding_dimension())


def load_minilm(path: Path, device: str = "cpu") -> MiniLM | None:
    """The folder's model in plain torch, or None when the folder is not the standard layout."""
    config = _readable(Path(path))
    return None if config is None else MiniLM(Path(path), config, device)
