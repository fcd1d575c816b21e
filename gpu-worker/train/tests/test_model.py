import trainer_path  # noqa: F401  (before the package imports)
import math
import os
import tempfile
import unittest

import torch
import torch.nn.functional as F

from hypencoder_train.export import export, load, read_safetensors
from hypencoder_train.model import QNET_LAYER_NORM_EPS, BertConfig, DualEncoder, QNetConfig, qnet_scores
from hypencoder_train.wordpiece import SPECIAL_TOKENS

CONFIG = BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, max_position_embeddings=24)
QNET = QNetConfig([16, 16, 16, 1])


def model(qnet=QNET):
    torch.manual_seed(0)
    m = DualEncoder(CONFIG, qnet)
    m.eval()
    return m


class QNetTest(unittest.TestCase):
    def test_matches_a_plain_loop(self):
        torch.manual_seed(1)
        weights = [torch.randn(2, 16, 16), torch.randn(2, 16, 16), torch.randn(2, 1, 16)]
        biases = [torch.randn(2, 1, 16), torch.randn(2, 1, 16)]
        docs = torch.randn(3, 16)
        scores = qnet_scores(QNET, weights, biases, docs)
        for q in range(2):
            for d in range(3):
                x = docs[d]
                for j in range(2):
                    y = F.layer_norm(torch.relu(weights[j][q] @ x + biases[j][q, 0]), (16,), eps=QNET_LAYER_NORM_EPS)
                    x = y + x if j == 0 else y  # residual on every hidden layer but the last
                self.assertAlmostEqual(scores[q, d].item(), (weights[2][q, 0] @ x).item(), places=4)


class HyperheadTest(unittest.TestCase):
    def test_padding_does_not_change_the_q_net(self):
        m = model()
        ids = torch.tensor([[2, 7, 9, 3]])
        padded = torch.tensor([[2, 7, 9, 3, 0, 0]])
        docs = torch.randn(5, 16)
        with torch.no_grad():
            a = m.score_matrix(ids, torch.ones_like(ids), docs)
            b = m.score_matrix(padded, (padded != 0).long(), docs)
        self.assertTrue(torch.allclose(a, b, atol=1e-5))

    def test_tensor_names_are_the_importers(self):
        names = set(model().hf_state_dict())
        self.assertIn("query_encoder.transformer.embeddings.word_embeddings.weight", names)
        self.assertIn("query_encoder.transformer.encoder.layer.0.attention.self.query.weight", names)
        self.assertIn("query_encoder.hyper_base_matrices.2", names)
        self.assertIn("query_encoder.hyper_base_vectors.1", names)
        self.assertIn("query_encoder.key_projections.4.weight", names)  # 3 weight slots + 2 bias slots
        self.assertNotIn("query_encoder.key_projections.5.weight", names)
        bi = set(model(None).hf_state_dict())
        self.assertIn("embeddings.word_embeddings.weight", bi)
        self.assertFalse(any(n.startswith("query_encoder.") for n in bi))


class ExportTest(unittest.TestCase):
    def test_round_trip(self):
        vocab = SPECIAL_TOKENS + [f"w{i}" for i in range(40 - len(SPECIAL_TOKENS))]
        for qnet in (QNET, None):
            m = model(qnet)
            with tempfile.TemporaryDirectory() as out:
                export(m, vocab, out)
                self.assertEqual(
                    sorted(os.listdir(out)), ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "vocab.txt"]
                )
                tensors = read_safetensors(os.path.join(out, "model.safetensors"))
                for name, t in m.hf_state_dict().items():
                    self.assertTrue(torch.equal(tensors[name], t), name)
                again, again_vocab = load(out)
            self.assertEqual(again_vocab, vocab)
            ids = torch.tensor([[2, 8, 11, 3]])
            with torch.no_grad():
                docs = m.encode_docs(ids, torch.ones_like(ids))
                self.assertTrue(torch.equal(m.score_matrix(ids, torch.ones_like(ids), docs), again.score_matrix(ids, torch.ones_like(ids), docs)))


if __name__ == "__main__":
    unittest.main()
