"""Trains the Hypencoder or the same-backbone bi-encoder on the Debian corpus, within a wall-clock budget.

  /usr/bin/python3 -m hypencoder_train train --kind hypencoder --minutes 25 --out models/debian-mini

Contrastive loss over in-batch negatives (cross-entropy of each query against the batch's documents),
optionally plus a KL term that distils a teacher's in-batch score distribution (--teacher, e.g. the
bi-encoder) and a warm start of the BERT from another checkpoint (--init-bert). Every --eval-minutes it
measures known-item MRR@10 on the dev split and exports the best model so far to --out.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time
from typing import List, Optional, Sequence

import torch
import torch.nn.functional as F

from . import data as D
from .evaluate import known_item_mrr
from .export import export, load
from .model import BertConfig, DualEncoder, QNetConfig
from .wordpiece import PAD, WordPieceTokenizer, train_wordpiece

QUERY_MAX_LENGTH = 32


def pad(rows: Sequence[List[int]]):
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), PAD, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r)
        mask[i, : len(r)] = 1
    return ids, mask


def positives_mask(batch: Sequence[D.Example], docs: Sequence[D.Document]) -> torch.Tensor:
    """[Q, D] True where document d also answers query q: same source package (siblings share
    descriptions) or, for a tag query, carrying all its tags. Those are not used as negatives."""
    n = len(batch)
    m = torch.zeros((n, n), dtype=torch.bool)
    for qi, q in enumerate(batch):
        mine = docs[q.doc_index]
        for di, e in enumerate(batch):
            other = docs[e.doc_index]
            if di != qi and (other.source == mine.source or other.title == mine.title or (q.query_tags and q.query_tags <= other.tags)):
                m[qi, di] = True
    return m


def build_vocab(args, docs: Sequence[D.Document], train_idx: Sequence[int]) -> List[str]:
    path = os.path.join(args.work, "vocab.txt")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            return f.read().split("\n")[:-1]
    t = time.time()
    vocab = train_wordpiece((docs[i].text for i in train_idx), args.vocab_size)
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(vocab) + "\n")
    log(args, {"event": "vocab", "size": len(vocab), "seconds": round(time.time() - t, 1)})
    return vocab


def log(args, record: dict) -> None:
    record = {"t": round(time.time() - args.started, 1), **record}
    line = json.dumps(record)
    print(line, flush=True)
    with open(os.path.join(args.work, "log.jsonl"), "a", encoding="utf-8") as f:
        f.write(line + "\n")


def run(args) -> dict:
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rng = random.Random(args.seed)
    args.started = time.time()
    os.makedirs(args.work, exist_ok=True)
    docs = D.load_corpus(args.corpus)
    train_idx = [i for i, d in enumerate(docs) if d.split == "train"]
    if args.max_train_docs:
        train_idx = train_idx[: args.max_train_docs]
    vocab = build_vocab(args, docs, train_idx)
    tok = WordPieceTokenizer(vocab)

    bert_config = BertConfig(
        vocab_size=len(vocab), hidden_size=args.hidden, num_hidden_layers=args.layers, num_attention_heads=args.heads,
        intermediate_size=args.intermediate or 4 * args.hidden, max_position_embeddings=args.doc_max_length,
    )
    qnet = QNetConfig([args.hidden] * (args.qnet_hidden_layers + 1) + [1]) if args.kind == "hypencoder" else None
    model = DualEncoder(bert_config, qnet, args.pooling)
    if args.init_bert:
        source, _ = load(args.init_bert)
        model.bert.load_state_dict(source.bert.state_dict())
    teacher: Optional[DualEncoder] = load(args.teacher)[0] if args.teacher else None

    head_params = list(model.head.parameters()) if model.head is not None else []
    head_ids = {id(p) for p in head_params}
    groups = [{"params": [p for p in model.parameters() if id(p) not in head_ids], "lr": args.lr}]
    if head_params:
        groups.append({"params": head_params, "lr": args.lr * args.head_lr_scale})
    opt = torch.optim.AdamW(groups, weight_decay=0.01)
    base_lrs = [g["lr"] for g in groups]

    dev = [d for d in docs if d.split == "dev"]
    budget = args.minutes * 60
    step, best, epoch = 0, -1.0, 0
    next_eval = args.eval_minutes * 60
    history = []
    examples: List[D.Example] = []
    position = 0
    train_started = time.time()
    while True:
        elapsed = time.time() - train_started
        if elapsed >= budget or (args.max_steps and step >= args.max_steps):
            break
        if position + args.batch > len(examples):
            examples, position, epoch = D.epoch_examples(docs, train_idx, rng, args.batch), 0, epoch + 1
        batch = examples[position : position + args.batch]
        position += args.batch
        warm = min(1.0, (step + 1) / args.warmup)
        decay = 0.5 * (1 + math.cos(math.pi * min(1.0, elapsed / budget)))
        for g, lr in zip(opt.param_groups, base_lrs):
            g["lr"] = lr * warm * max(decay, 0.05)

        model.train()
        q_ids, q_mask = pad([tok.encode(e.query, QUERY_MAX_LENGTH) for e in batch])
        d_ids, d_mask = pad([tok.encode(e.doc, args.doc_max_length) for e in batch])
        doc_vectors = model.encode_docs(d_ids, d_mask)
        q_states = model.bert(q_ids, q_mask)
        scores = model.score_states(q_states, q_mask, doc_vectors)
        also = positives_mask(batch, docs)
        scores = scores.masked_fill(also, float("-inf"))
        target = torch.arange(len(batch))
        loss = F.cross_entropy(scores * args.scale, target)
        if model.head is not None and args.aux_dot_weight > 0:
            # The pooled inner product on the same backbone: an easy signal that trains the shared BERT
            # while the hyperhead is still learning to produce useful q-nets. Not part of the export.
            dot = (model.pool(q_states, q_mask) @ doc_vectors.T).masked_fill(also, float("-inf"))
            loss = loss + args.aux_dot_weight * F.cross_entropy(dot, target)
        if teacher is not None:
            with torch.no_grad():
                t_scores = teacher.score_matrix(q_ids, q_mask, teacher.encode_docs(d_ids, d_mask)).masked_fill(also, float("-inf"))
                t_probs = (t_scores / args.teacher_temperature).softmax(-1)
            student_log = (scores * args.scale).log_softmax(-1).masked_fill(also, 0.0)
            loss = loss + args.distil_weight * -(t_probs * student_log).sum(-1).mean()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        if step % 50 == 0:
            log(args, {"step": step, "epoch": epoch, "loss": round(loss.item(), 4), "lr": opt.param_groups[0]["lr"]})
        if time.time() - train_started >= next_eval:
            next_eval += args.eval_minutes * 60
            best = checkpoint(args, model, vocab, tok, dev, step, best, history)
    best = checkpoint(args, model, vocab, tok, dev, step, best, history)
    summary = {"steps": step, "epochs": epoch, "train_seconds": round(time.time() - train_started, 1), "best_dev_mrr10": best, "history": history}
    log(args, {"event": "done", **summary})
    return summary


def checkpoint(args, model, vocab, tok, dev, step, best, history) -> float:
    model.eval()
    with torch.no_grad():
        mrr = known_item_mrr(model, tok, dev[: args.eval_docs], args.doc_max_length, queries=args.eval_queries)
    history.append({"step": step, "dev_mrr10": round(mrr, 4)})
    log(args, {"event": "eval", "step": step, "dev_mrr10": round(mrr, 4)})
    if mrr > best:
        training = {
            "kind": args.kind, "command": " ".join(["python3 -m hypencoder_train"] + sys.argv[1:]), "step": step,
            "dev_known_item_mrr10_subset": round(mrr, 4), "eval_docs": min(len(dev), args.eval_docs), "seed": args.seed,
        }
        export(model, vocab, args.out, training)
        best = mrr
    return best


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--kind", choices=["hypencoder", "biencoder"], required=True)
    p.add_argument("--corpus", default="infra/dev/corpus/debian-main.jsonl.gz")
    p.add_argument("--out", required=True, help="HF-layout directory the best model is exported to")
    p.add_argument("--work", default="/tmp/hypencoder-train", help="vocab.txt cache and log.jsonl")
    p.add_argument("--minutes", type=float, default=20)
    p.add_argument("--max-steps", type=int, default=0)
    p.add_argument("--max-train-docs", type=int, default=0)
    p.add_argument("--vocab-size", type=int, default=16000)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--heads", type=int, default=2)
    p.add_argument("--intermediate", type=int, default=0)
    p.add_argument("--qnet-hidden-layers", type=int, default=2)
    p.add_argument("--doc-max-length", type=int, default=128)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--head-lr-scale", type=float, default=1.0)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--scale", type=float, default=1.0, help="multiplies scores before the softmax")
    p.add_argument("--init-bert", help="warm-start the BERT from this exported checkpoint")
    p.add_argument("--teacher", help="an exported checkpoint whose in-batch scores are distilled")
    p.add_argument("--teacher-temperature", type=float, default=1.0)
    p.add_argument("--distil-weight", type=float, default=1.0)
    p.add_argument("--pooling", choices=["mean", "cls"], default="mean", help="document (and bi-encoder query) embedding")
    p.add_argument("--aux-dot-weight", type=float, default=0.0, help="Hypencoder: weight of an auxiliary [CLS]-dot loss")
    p.add_argument("--eval-minutes", type=float, default=5)
    p.add_argument("--eval-docs", type=int, default=100000)
    p.add_argument("--eval-queries", type=int, default=1000)
    p.add_argument("--threads", type=int, default=1, help="1 beats 2 on a shared 2-core machine (OpenBLAS threads spin)")
    p.add_argument("--seed", type=int, default=13)
