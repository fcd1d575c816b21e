"""Retrieval metrics of an exported model on the Debian corpus, for model cards and model selection.

- Known-item: a package's synopsis is the query, the package itself the one relevant document.
- Tag queries: a few natural-language queries, each defined by a Debtag conjunction; a document is
  relevant when it carries all the tags. (The relevance benchmark, `npm run bench -- relevance`, has the
  full set; these are the trainer's quick check.)
"""
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


# (query, required tags): a few of the kind `npm run bench -- relevance` asks, for the trainer's own check.
TAG_QUERIES = [
    ("text editor", ["use::editing", "works-with::text"]),
    ("music player", ["sound::player"]),
    ("image viewer", ["use::viewing", "works-with::image"]),
    ("chess", ["game::board:chess"]),
    ("puzzle game", ["game::puzzle"]),
    ("email client", ["works-with::mail", "network::client"]),
    ("bioinformatics", ["field::biology:bioinformatics"]),
    ("login authentication", ["security::authentication"]),
    ("encryption", ["security::cryptography"]),
    ("pdf viewer", ["works-with-format::pdf", "use::viewing"]),
    ("compress files", ["use::compressing"]),
    ("monitor network traffic", ["works-with::network-traffic", "use::monitor"]),
    ("astronomy", ["field::astronomy"]),
    ("spreadsheet", ["works-with::spreadsheet"]),
    ("synchronize files", ["use::synchronizing"]),
    ("chemistry", ["field::chemistry"]),
    ("mathematics", ["field::mathematics"]),
    ("version control", ["works-with::vcs"]),
    ("firewall", ["security::firewall"]),
    ("fonts", ["works-with::font"]),
]


def evaluate_model(model, tok, docs, max_length: int, known_item_queries: int, seed: int = 0) -> dict:
    """Known-item MRR@10 and recall@10 for sampled synopses, and tag-query P@10, over the collection `docs`."""
    vectors = encode_documents(model, tok, [d.text for d in docs], max_length)
    picked = random.Random(seed).sample(range(len(docs)), k=min(known_item_queries, len(docs)))
    scores = score_queries(model, tok, [docs[i].title for i in picked], vectors)
    mrr = recall = 0.0
    for row, target in zip(scores, picked):
        top = torch.topk(row, k=10).indices.tolist()
        if target in top:
            mrr += 1.0 / (top.index(target) + 1)
            recall += 1.0
    tag_scores = score_queries(model, tok, [q for q, _ in TAG_QUERIES], vectors)
    precisions = []
    for row, (_, tags) in zip(tag_scores, TAG_QUERIES):
        top = torch.topk(row, k=10).indices.tolist()
        precisions.append(sum(1 for i in top if set(tags) <= docs[i].tags) / 10)
    return {
        "collection": len(docs),
        "known_item_queries": len(picked),
        "known_item_mrr10": round(mrr / len(picked), 4),
        "known_item_recall10": round(recall / len(picked), 4),
        "tag_queries": len(TAG_QUERIES),
        "tag_p10": round(sum(precisions) / len(precisions), 4),
    }


def fixed_subset(docs, n: int):
    """Every (len/n)-th document in corpus order: the small collection the model card's reproducible
    figure uses, which test/trainer.test.ts recomputes through the TypeScript path."""
    step = len(docs) // n
    return [docs[i * step] for i in range(n)]


def evaluate_command(args) -> None:
    import json

    from .data import load_corpus
    from .export import load
    from .wordpiece import WordPieceTokenizer

    torch.set_num_threads(args.threads)
    model, vocab = load(args.model)
    tok = WordPieceTokenizer(vocab)
    docs = [d for d in load_corpus(args.corpus) if d.split in args.splits.split(",")]
    if args.subset:
        docs = fixed_subset(docs, args.subset)
    with torch.no_grad():
        result = evaluate_model(model, tok, docs, model.bert_config.max_position_embeddings, args.queries)
    print(json.dumps({"model": args.model, "splits": args.splits, **result}))


def add_evaluate_arguments(p) -> None:
    p.add_argument("--model", required=True)
    p.add_argument("--corpus", default="infra/dev/corpus/debian-main.jsonl.gz")
    p.add_argument("--splits", default="test", help="comma-separated splits forming the collection (queries are sampled from it)")
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--subset", type=int, default=0, help="use only this many documents, every n-th (see fixed_subset)")
    p.add_argument("--threads", type=int, default=1)
