"""A small HF-compatible BERT, the Hypencoder hyperhead + q-net, and the same-backbone bi-encoder.

Parameter names are HF's (BertModel; the official Hypencoder module's hyperhead), so `state_dict()`
exports straight into the layout `hypencoder import` reads (gpu-worker/src/model/checkpoint/). The math
follows HF BertModel and the official Hypencoder step by step (test/reference/ holds the plain
TypeScript reference the ONNX graphs are checked against).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import List, Optional

import torch
import torch.nn.functional as F
from torch import nn

QNET_LAYER_NORM_EPS = 1e-5
BERT_LAYER_NORM_EPS = 1e-12


@dataclass
class BertConfig:
    vocab_size: int
    hidden_size: int = 256
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    intermediate_size: int = 1024
    max_position_embeddings: int = 128
    type_vocab_size: int = 2
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    layer_norm_eps: float = BERT_LAYER_NORM_EPS

    def hf_json(self) -> dict:
        """The HF BertConfig serialisation (what `BertConfig.to_dict()` holds for these fields)."""
        return {
            "architectures": ["BertModel"],
            "model_type": "bert",
            "hidden_act": "gelu",
            "position_embedding_type": "absolute",
            "initializer_range": 0.02,
            "pad_token_id": 0,
            **asdict(self),
        }


class BertEmbeddings(nn.Module):
    def __init__(self, c: BertConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(c.vocab_size, c.hidden_size, padding_idx=0)
        self.position_embeddings = nn.Embedding(c.max_position_embeddings, c.hidden_size)
        self.token_type_embeddings = nn.Embedding(c.type_vocab_size, c.hidden_size)
        self.LayerNorm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.dropout = nn.Dropout(c.hidden_dropout_prob)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(ids.shape[1], device=ids.device).unsqueeze(0)
        x = self.word_embeddings(ids) + self.position_embeddings(positions) + self.token_type_embeddings(torch.zeros_like(ids))
        return self.dropout(self.LayerNorm(x))


class BertSelfAttention(nn.Module):
    def __init__(self, c: BertConfig):
        super().__init__()
        self.heads = c.num_attention_heads
        self.head_dim = c.hidden_size // c.num_attention_heads
        self.query = nn.Linear(c.hidden_size, c.hidden_size)
        self.key = nn.Linear(c.hidden_size, c.hidden_size)
        self.value = nn.Linear(c.hidden_size, c.hidden_size)
        self.dropout = nn.Dropout(c.attention_probs_dropout_prob)

    def forward(self, x: torch.Tensor, mask_bias: torch.Tensor) -> torch.Tensor:
        b, s, h = x.shape
        split = lambda t: t.view(b, s, self.heads, self.head_dim).transpose(1, 2)  # noqa: E731
        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.head_dim) + mask_bias
        probs = self.dropout(scores.softmax(-1))
        return (probs @ v).transpose(1, 2).reshape(b, s, h)


class BertSelfOutput(nn.Module):
    def __init__(self, c: BertConfig, width: int):
        super().__init__()
        self.dense = nn.Linear(width, c.hidden_size)
        self.LayerNorm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.dropout = nn.Dropout(c.hidden_dropout_prob)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dropout(self.dense(x)) + residual)


class BertAttention(nn.Module):
    def __init__(self, c: BertConfig):
        super().__init__()
        self.self = BertSelfAttention(c)
        self.output = BertSelfOutput(c, c.hidden_size)

    def forward(self, x: torch.Tensor, mask_bias: torch.Tensor) -> torch.Tensor:
        return self.output(self.self(x, mask_bias), x)


class BertIntermediate(nn.Module):
    def __init__(self, c: BertConfig):
        super().__init__()
        self.dense = nn.Linear(c.hidden_size, c.intermediate_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(self.dense(x))  # erf GELU, HF's "gelu"


class BertLayer(nn.Module):
    def __init__(self, c: BertConfig):
        super().__init__()
        self.attention = BertAttention(c)
        self.intermediate = BertIntermediate(c)
        self.output = BertSelfOutput(c, c.intermediate_size)

    def forward(self, x: torch.Tensor, mask_bias: torch.Tensor) -> torch.Tensor:
        a = self.attention(x, mask_bias)
        return self.output(self.intermediate(a), a)


class BertEncoder(nn.Module):
    def __init__(self, c: BertConfig):
        super().__init__()
        self.layer = nn.ModuleList(BertLayer(c) for _ in range(c.num_hidden_layers))


class BertModel(nn.Module):
    """HF BertModel without the pooler (Hypencoder never uses it); returns the last hidden states."""

    def __init__(self, c: BertConfig):
        super().__init__()
        self.config = c
        self.embeddings = BertEmbeddings(c)
        self.encoder = BertEncoder(c)
        self.apply(self._init)

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)
        if isinstance(m, nn.Linear):
            nn.init.zeros_(m.bias)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        # HF: (1 - mask) * finfo.min, broadcast over heads and query positions.
        mask_bias = (1.0 - mask[:, None, None, :].to(torch.float32)) * torch.finfo(torch.float32).min
        x = self.embeddings(ids)
        for layer in self.encoder.layer:
            x = layer(x, mask_bias)
        return x


@dataclass
class QNetConfig:
    vector_dimensions: List[int]
    activation_type: str = "relu"
    do_layer_norm: bool = True
    do_residual: bool = True
    do_residual_on_last: bool = False
    layer_norm_before_residual: bool = True

    @property
    def hidden_layers(self) -> int:
        return len(self.vector_dimensions) - 2


class Hyperhead(nn.Module):
    """The official Hypencoder hypernetwork: per q-net slot, learned query rows attend over the query's
    token states; relu -> layer norm (no affine) -> Linear(in, in) -> + a learned base."""

    def __init__(self, hidden: int, q: QNetConfig):
        super().__init__()
        d = q.vector_dimensions
        L = q.hidden_layers
        weights = [(d[i], d[i + 1]) for i in range(L + 1)]
        biases = [(d[j + 1], 1) for j in range(L)]
        self.weight_shapes = weights
        self.bias_shapes = biases
        init = lambda *shape: nn.Parameter(torch.randn(*shape) * (1.0 / math.sqrt(shape[-1])))  # noqa: E731
        self.hyper_base_matrices = nn.ParameterList(init(1, o, i) for i, o in weights)
        self.weight_query_embeddings = nn.ParameterList(init(1, o, i) for i, o in weights)
        self.weight_hyper_projection = nn.ModuleList(nn.Linear(i, i) for i, _ in weights)
        self.hyper_base_vectors = nn.ParameterList(nn.Parameter(torch.zeros(o, i)) for i, o in biases)
        self.bias_query_embeddings = nn.ParameterList(init(1, o, i) for i, o in biases)
        self.bias_hyper_projection = nn.ModuleList(nn.Linear(i, i) for i, _ in biases)
        self.key_projections = nn.ModuleList(nn.Linear(hidden, i) for i, _ in weights + biases)
        self.value_projections = nn.ModuleList(nn.Linear(hidden, i) for i, _ in weights + biases)
        for proj in list(self.weight_hyper_projection) + list(self.bias_hyper_projection):
            nn.init.normal_(proj.weight, std=0.02)
            nn.init.zeros_(proj.bias)

    def _slot(self, states, mask, slot, queries, projection, base, out_size):
        keys = self.key_projections[slot](states)  # [B, S, in]
        values = self.value_projections[slot](states)
        logits = queries @ keys.transpose(1, 2) / math.sqrt(out_size)  # [B, out, S]
        logits = logits.masked_fill(mask[:, None, :] == 0, float("-inf"))
        attended = torch.relu(logits.softmax(-1) @ values)  # [B, out, in]
        normed = F.layer_norm(attended, attended.shape[-1:], eps=QNET_LAYER_NORM_EPS)
        return projection(normed) + base

    def forward(self, states: torch.Tensor, mask: torch.Tensor):
        """q-net parameters per query: weights[i] [B, out_i, in_i], biases[j] [B, 1, in_j]."""
        weights = [
            self._slot(states, mask, i, self.weight_query_embeddings[i], self.weight_hyper_projection[i], self.hyper_base_matrices[i], o)
            for i, (_, o) in enumerate(self.weight_shapes)
        ]
        n = len(self.weight_shapes)
        biases = [
            self._slot(states, mask, n + j, self.bias_query_embeddings[j], self.bias_hyper_projection[j], self.hyper_base_vectors[j], 1)
            for j in range(len(self.bias_shapes))
        ]
        return weights, biases


def _activate(x: torch.Tensor, kind: str) -> torch.Tensor:
    if kind == "relu":
        return torch.relu(x)
    if kind == "gelu":
        return F.gelu(x)
    if kind == "tanh":
        return torch.tanh(x)
    if kind == "sigmoid":
        return torch.sigmoid(x)
    if kind == "leaky_relu":
        return F.leaky_relu(x, 0.01)
    raise ValueError(f"unknown activation {kind}")


def qnet_scores(q: QNetConfig, weights, biases, docs: torch.Tensor) -> torch.Tensor:
    """Every query's q-net on every document: docs [D, h] -> scores [Q, D]."""
    x = docs.unsqueeze(0).expand(weights[0].shape[0], -1, -1)  # [Q, D, in]
    for j in range(q.hidden_layers):
        y = _activate(x @ weights[j].transpose(1, 2) + biases[j], q.activation_type)
        if q.do_layer_norm and q.layer_norm_before_residual:
            y = F.layer_norm(y, y.shape[-1:], eps=QNET_LAYER_NORM_EPS)
        last = j == q.hidden_layers - 1
        if q.do_residual and (not last or q.do_residual_on_last):
            y = y + x
        if q.do_layer_norm and not q.layer_norm_before_residual:
            y = F.layer_norm(y, y.shape[-1:], eps=QNET_LAYER_NORM_EPS)
        x = y
    return (x @ weights[-1].transpose(1, 2)).squeeze(-1)


class HypencoderEncoder(nn.Module):
    """query_encoder.*: the (shared) BERT under `transformer` and the hyperhead beside it."""

    def __init__(self, bert: BertModel, q: QNetConfig):
        super().__init__()
        self.transformer = bert
        self.head = Hyperhead(bert.config.hidden_size, q)


class DualEncoder(nn.Module):
    """A shared-encoder retriever: the Hypencoder (`qnet` given) or the inner-product bi-encoder.

    `pooling` makes the document embedding (and the bi-encoder's query embedding) from the last
    hidden states: "cls" takes [CLS], "mean" averages the unmasked tokens ([CLS] and [SEP] included,
    as the ONNX document encoder does). Trained from scratch here, [CLS] pooling collapsed to
    chance-level loss for hundreds of steps while mean pooling learned at once (gpu-worker/train/README.md)."""

    def __init__(self, bert_config: BertConfig, qnet: Optional[QNetConfig] = None, pooling: str = "mean"):
        super().__init__()
        if pooling not in ("cls", "mean"):
            raise ValueError(f"unknown pooling {pooling}")
        self.bert_config = bert_config
        self.qnet = qnet
        self.pooling = pooling
        self.bert = BertModel(bert_config)
        self.head = Hyperhead(bert_config.hidden_size, qnet) if qnet else None

    def pool(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.pooling == "cls":
            return states[:, 0]
        m = mask.unsqueeze(-1).to(states.dtype)
        return (states * m).sum(1) / m.sum(1)

    def encode_docs(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.pool(self.bert(ids, mask), mask)

    def score_matrix(self, q_ids, q_mask, docs: torch.Tensor) -> torch.Tensor:
        """[Q, D] scores of queries against document embeddings."""
        return self.score_states(self.bert(q_ids, q_mask), q_mask, docs)

    def score_states(self, states, q_mask, docs: torch.Tensor) -> torch.Tensor:
        if self.head is None:
            return self.pool(states, q_mask) @ docs.T
        weights, biases = self.head(states, q_mask)
        return qnet_scores(self.qnet, weights, biases, docs)

    def hf_state_dict(self) -> dict:
        """Tensor names of the HF checkpoint: the Hypencoder's `query_encoder.transformer.*` +
        `query_encoder.*` hyperhead, or a plain BertModel's names for the bi-encoder."""
        out = {}
        bert_prefix = "query_encoder.transformer." if self.head is not None else ""
        for name, t in self.bert.state_dict().items():
            out[bert_prefix + name] = t
        if self.head is not None:
            for name, t in self.head.state_dict().items():
                out["query_encoder." + name] = t
        return {k: v.detach().contiguous().float() for k, v in out.items()}
