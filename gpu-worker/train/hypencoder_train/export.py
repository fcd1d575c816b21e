"""Writes trained models in the HF layout `hypencoder import` and HF transformers read.

- Hypencoder: config.json (HypencoderDualEncoder, with the BERT's own HF config under
  `base_encoder_config`, so the importer needs no --base-config), model.safetensors with
  `query_encoder.transformer.*` (shared encoder) and `query_encoder.*` hyperhead tensors.
- Bi-encoder: a plain BertModel (config.json + model.safetensors).
- Both: vocab.txt, tokenizer.json (what BertTokenizerFast saves), tokenizer_config.json.
"""
from __future__ import annotations

import json
import os
import struct
from typing import Dict, List, Optional

import numpy as np
import torch

from .model import BertConfig, DualEncoder, QNetConfig
from .wordpiece import SPECIAL_TOKENS

BASE_MODEL_NAME = "hypencoder-search/debian-mini-bert"


def write_safetensors(path: str, tensors: Dict[str, torch.Tensor], metadata: Optional[Dict[str, str]] = None) -> None:
    """The safetensors format: u64 header length, JSON header (8-byte aligned), raw little-endian data."""
    header: Dict[str, object] = {"__metadata__": metadata or {"format": "pt"}}
    blobs: List[bytes] = []
    offset = 0
    for name in sorted(tensors):
        array = tensors[name].detach().cpu().contiguous().to(torch.float32).numpy().astype("<f4")
        blob = array.tobytes()
        header[name] = {"dtype": "F32", "shape": list(array.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    encoded = json.dumps(header, separators=(",", ":")).encode("utf-8")
    encoded += b" " * (-len(encoded) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(encoded)))
        f.write(encoded)
        for blob in blobs:
            f.write(blob)
    os.replace(tmp, path)


def read_safetensors(path: str) -> Dict[str, torch.Tensor]:
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F32", f"{path}: {name} is {info['dtype']}"
        b, e = info["data_offsets"]
        out[name] = torch.from_numpy(np.frombuffer(data[base + b : base + e], dtype="<f4").copy()).reshape(info["shape"])
    return out


def tokenizer_json(vocab: List[str]) -> dict:
    """What HF BertTokenizerFast.save_pretrained writes for a lowercase WordPiece vocabulary
    (mirrors gpu-worker/src/model/tokenizer/bert-tokenizer-json.ts)."""
    ids = {tok: i for i, tok in enumerate(vocab)}
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [
            {"id": ids[t], "content": t, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True}
            for t in SPECIAL_TOKENS
        ],
        "normalizer": {"type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": True, "strip_accents": None, "lowercase": True},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
            "pair": [
                {"SpecialToken": {"id": "[CLS]", "type_id": 0}},
                {"Sequence": {"id": "A", "type_id": 0}},
                {"SpecialToken": {"id": "[SEP]", "type_id": 0}},
                {"Sequence": {"id": "B", "type_id": 1}},
                {"SpecialToken": {"id": "[SEP]", "type_id": 1}},
            ],
            "special_tokens": {
                "[CLS]": {"id": "[CLS]", "ids": [ids["[CLS]"]], "tokens": ["[CLS]"]},
                "[SEP]": {"id": "[SEP]", "ids": [ids["[SEP]"]], "tokens": ["[SEP]"]},
            },
        },
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": True},
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##", "max_input_chars_per_word": 100, "vocab": ids},
    }


def _json(path: str, value: object) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(value, f, indent=2, ensure_ascii=False)
        f.write("\n")


def write_tokenizer(out: str, vocab: List[str], max_length: int) -> None:
    with open(os.path.join(out, "vocab.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(vocab) + "\n")
    _json(os.path.join(out, "tokenizer.json"), tokenizer_json(vocab))
    _json(os.path.join(out, "tokenizer_config.json"), {"do_lower_case": True, "model_max_length": max_length, "tokenizer_class": "BertTokenizer"})


def hypencoder_config(bert: BertConfig, qnet: QNetConfig, pooling: str) -> dict:
    """A HypencoderDualEncoder config.json like the published ones, plus `base_encoder_config`."""
    return {
        "architectures": ["HypencoderDualEncoder"],
        "loss_type": ["cross_entropy"],
        "loss_kwargs": [{}],
        "shared_encoder": True,
        "query_encoder_kwargs": {
            "model_name_or_path": BASE_MODEL_NAME,
            "base_encoder_output_dim": bert.hidden_size,
            "converter_kwargs": {
                "vector_dimensions": qnet.vector_dimensions,
                "activation_type": qnet.activation_type,
                "do_layer_norm": qnet.do_layer_norm,
                "do_residual": qnet.do_residual,
                "do_residual_on_last": qnet.do_residual_on_last,
                "layer_norm_before_residual": qnet.layer_norm_before_residual,
            },
            "embedding_representation": None,
            "freeze_transformer": False,
        },
        "passage_encoder_kwargs": {"model_name_or_path": BASE_MODEL_NAME, "pooling_type": pooling, "freeze_transformer": False},
        "base_encoder_config": bert.hf_json(),
        "torch_dtype": "float32",
    }


def export(model: DualEncoder, vocab: List[str], out: str, training: Optional[dict] = None) -> None:
    """Writes `model` to `out` in the HF layout; `training` (metrics, command) goes to training.json."""
    os.makedirs(out, exist_ok=True)
    state = model.hf_state_dict()
    write_safetensors(os.path.join(out, "model.safetensors"), state)
    if model.qnet is not None:
        _json(os.path.join(out, "config.json"), hypencoder_config(model.bert_config, model.qnet, model.pooling))
    else:
        # A plain HF BertConfig, plus how the bi-encoder pools (HF ignores unknown keys).
        _json(os.path.join(out, "config.json"), {**model.bert_config.hf_json(), "pooling_type": model.pooling})
    write_tokenizer(out, vocab, model.bert_config.max_position_embeddings)
    if training is not None:
        _json(os.path.join(out, "training.json"), training)


def load(path: str) -> tuple:
    """(DualEncoder, vocab) from a directory `export` wrote."""
    with open(os.path.join(path, "config.json"), encoding="utf-8") as f:
        config = json.load(f)
    with open(os.path.join(path, "vocab.txt"), encoding="utf-8") as f:
        vocab = f.read().split("\n")[:-1]
    fields = set(BertConfig.__dataclass_fields__)
    if "base_encoder_config" in config:
        bert = BertConfig(**{k: v for k, v in config["base_encoder_config"].items() if k in fields})
        conv = config["query_encoder_kwargs"]["converter_kwargs"]
        qnet = QNetConfig(**{k: v for k, v in conv.items() if k in QNetConfig.__dataclass_fields__})
        pooling = config["passage_encoder_kwargs"]["pooling_type"]
    else:
        bert = BertConfig(**{k: v for k, v in config.items() if k in fields})
        qnet = None
        pooling = config.get("pooling_type", "cls")
    model = DualEncoder(bert, qnet, pooling)
    state = read_safetensors(os.path.join(path, "model.safetensors"))
    bert_prefix = "query_encoder.transformer." if qnet else ""
    model.bert.load_state_dict({k[len(bert_prefix):]: v for k, v in state.items() if k.startswith(bert_prefix) and (qnet is None or k.startswith(bert_prefix))}, strict=True)
    if qnet:
        model.head.load_state_dict({k[len("query_encoder."):]: v for k, v in state.items() if k.startswith("query_encoder.") and not k.startswith(bert_prefix)}, strict=True)
    model.eval()
    return model, vocab
