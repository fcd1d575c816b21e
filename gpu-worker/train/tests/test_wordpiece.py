import trainer_path  # noqa: F401  (before the package imports)
import unittest

from hypencoder_train.wordpiece import CLS, SEP, SPECIAL_TOKENS, UNK, WordPieceTokenizer, normalize, pre_tokenize, train_wordpiece


class NormalizationTest(unittest.TestCase):
    def test_bert_normalizer(self):
        # Lowercase, accents stripped (NFD, drop Mn), control chars dropped, whitespace unified, CJK isolated.
        self.assertEqual(normalize("Café\tNAÏVE\x00x\u00a0y"), "cafe naivex y")
        self.assertEqual(normalize("ab中c"), "ab 中 c")

    def test_pre_tokenizer_isolates_punctuation(self):
        self.assertEqual(pre_tokenize("gtk+ front-end (x11), v2.0"), ["gtk", "+", "front", "-", "end", "(", "x11", ")", ",", "v2", ".", "0"])


class WordPieceTest(unittest.TestCase):
    def setUp(self):
        self.vocab = SPECIAL_TOKENS + ["edit", "##or", "text", "a", "##s", "e", "##d", "##i", "##t"]
        self.tok = WordPieceTokenizer(self.vocab)

    def test_greedy_longest_match(self):
        ids = self.tok.encode("Text editors", 16)
        self.assertEqual([self.vocab[i] for i in ids], ["[CLS]", "text", "edit", "##or", "##s", "[SEP]"])

    def test_unknown_word_is_one_unk(self):
        self.assertEqual(self.tok.encode("edit qq", 16), [CLS, self.vocab.index("edit"), UNK, SEP])

    def test_truncation_keeps_the_frame(self):
        ids = self.tok.encode("text " * 50, 8)
        self.assertEqual(len(ids), 8)
        self.assertEqual((ids[0], ids[-1]), (CLS, SEP))

    def test_vocab_must_start_with_the_special_tokens(self):
        with self.assertRaises(ValueError):
            WordPieceTokenizer(["edit"] + SPECIAL_TOKENS)


class TrainerTest(unittest.TestCase):
    TEXTS = ["text editor for the console", "a text editor", "editors edit text", "console games", "the console"] * 20

    def test_learns_frequent_words_deterministically(self):
        vocab = train_wordpiece(self.TEXTS, 60)
        self.assertEqual(vocab[: len(SPECIAL_TOKENS)], SPECIAL_TOKENS)
        self.assertLessEqual(len(vocab), 60)
        self.assertEqual(len(vocab), len(set(vocab)))
        for word in ["text", "console", "editor"]:
            self.assertIn(word, vocab)
        self.assertEqual(vocab, train_wordpiece(self.TEXTS, 60))

    def test_every_training_word_tokenizes_without_unk(self):
        tok = WordPieceTokenizer(train_wordpiece(self.TEXTS, 40))
        for text in self.TEXTS[:5]:
            self.assertNotIn(UNK, tok.encode(text, 64))


if __name__ == "__main__":
    unittest.main()
