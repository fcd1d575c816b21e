"""Scores every (query, document) pair with an exported model in PyTorch, the reference the
TypeScript/ONNX path is checked against (test/train-fidelity.test.ts).

  python3 -m hypencoder_train score --model models/debian-mini --queries q.jsonl --docs d.jsonl

Input lines are {"id","text"}; output lines {"query_id","doc_id","score"}, queries in file order, like
`hypencoder score`. Max lengths default to what `hypencoder import` records: 64 for queries and 512
for documents, both capped at the BERT's max_position_embeddings.
"""
from __future__ import annotations

import json
import sys

import torch

from .evaluate import encode_documents
from .export import load
from .train import pad
from .wordpiece import WordPieceTokenizer


def read_jsonl(path: str):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def score(args) -> None:
    torch.set_num_threads(args.threads)
    model, vocab = load(args.model)
    tok = WordPieceTokenizer(vocab)
    positions = model.bert_config.max_position_embeddings
    q_max = min(args.query_max_length, positions)
    d_max = min(args.doc_max_length, positions)
    queries, docs = read_jsonl(args.queries), read_jsonl(args.docs)
    with torch.no_grad():
        vectors = encode_documents(model, tok, [d["text"] for d in docs], d_max)
        for q in queries:
            ids, mask = pad([tok.encode(q["text"], q_max)])
            row = model.score_matrix(ids, mask, vectors)[0]
            for d, s in zip(docs, row.tolist()):
                sys.stdout.write(json.dumps({"query_id": q["id"], "doc_id": d["id"], "score": s}) + "\n")


def to_torch_bin(args) -> None:
    """Copies an exported checkpoint with its weights as `pytorch_model.bin` (torch.save of the state dict)."""
    import os
    import shutil

    from .export import read_safetensors

    os.makedirs(args.dst, exist_ok=True)
    for name in os.listdir(args.src):
        if name != "model.safetensors":
            shutil.copy(os.path.join(args.src, name), os.path.join(args.dst, name))
    torch.save(read_safetensors(os.path.join(args.src, "model.safetensors")), os.path.join(args.dst, "pytorch_model.bin"))


def add_score_arguments(p) -> None:
    p.add_argument("--model", required=True)
    p.add_argument("--queries", required=True)
    p.add_argument("--docs", required=True)
    p.add_argument("--query-max-length", type=int, default=64)
    p.add_argument("--doc-max-length", type=int, default=512)
    p.add_argument("--threads", type=int, default=1)


def add_torch_bin_arguments(p) -> None:
    p.add_argument("src")
    p.add_argument("dst")
