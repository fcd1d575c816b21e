"""Known-item retrieval: a package's synopsis is the query, the package itself the one relevant document."""
from __future__ import annotations

import random
from typing import List, Sequence

import torch


def encode_documents(model, tok, texts: Sequence[str], max_length: int, batch: int = 128) -> torch.Tensor:
    from .train import pad

    # Length-sorted batches pad little; the result is put back in the input order.
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = torch.empty((len(texts), model.bert_config.hidden_size))
    for s in range(0, len(order), batch):
        chunk = order[s : s + batch]
        ids, mask = pad([tok.encode(texts[i], max_length) for i in chunk])
        out[chunk] = model.encode_docs(ids, mask)
    return out


def score_queries(model, tok, queries: Sequence[str], doc_vectors: torch.Tensor, batch: int = 32) -> torch.Tensor:
    from .train import QUERY_MAX_LENGTH, pad

    rows = []
    for s in range(0, len(queries), batch):
        ids, mask = pad([tok.encode(q, QUERY_MAX_LENGTH) for q in queries[s : s + batch]])
        rows.append(model.score_matrix(ids, mask, doc_vectors))
    return torch.cat(rows)


def known_item_mrr(model, tok, docs, max_length: int, queries: int = 1000, seed: int = 0) -> float:
    """MRR@10 of `queries` sampled packages' synopses against all of `docs` (full text)."""
    vectors = encode_documents(model, tok, [d.text for d in docs], max_length)
    picked = random.Random(seed).sample(range(len(docs)), k=min(queries, len(docs)))
    scores = score_queries(model, tok, [docs[i].title for i in picked], vectors)
    total = 0.0
    for row, target in zip(scores, picked):
        top = torch.topk(row, k=min(10, row.numel())).indices.tolist()
        total += 1.0 / (top.index(target) + 1) if target in top else 0.0
    return total / len(picked)
