import trainer_path  # noqa: F401  (before the package imports)
import random
import unittest

from hypencoder_train.data import Document, epoch_examples, make_example, tag_words


def doc(i, tags=()):
    title = f"fast text editor number {i} for terminals"
    return Document(f"p{i}", title, f"{title}\nA long description of package {i}.", f"A long description of package {i}.", f"src{i // 2}", frozenset(tags), "train")


class ExamplesTest(unittest.TestCase):
    def test_a_synopsis_query_never_meets_its_synopsis(self):
        docs = [doc(i, ["use::editing", "works-with::text", "role::program"]) for i in range(50)]
        rng = random.Random(0)
        kinds = set()
        for i in range(50):
            for _ in range(10):
                e = make_example(docs, i, rng)
                kind = "tag" if e.query_tags else "synopsis" if e.query == docs[i].title else "crop"
                kinds.add(kind)
                if kind == "synopsis":
                    self.assertEqual(e.doc, docs[i].description)
                if kind == "crop":  # a few words of the synopsis, never all of it
                    self.assertIn(e.query, docs[i].title)
                    self.assertLess(len(e.query.split()), len(docs[i].title.split()))
        self.assertEqual(kinds, {"tag", "synopsis", "crop"})

    def test_tag_words(self):
        self.assertEqual(tag_words("use::editing"), "editing")
        self.assertEqual(tag_words("works-with-format::pdf"), "pdf")
        self.assertEqual(tag_words("game::strategy"), "strategy game")
        self.assertEqual(tag_words("devel::lang:python"), "python programming development")
        self.assertIsNone(tag_words("role::program"))
        self.assertIsNone(tag_words("interface::commandline"))

    def test_epoch_covers_each_document_once_in_full_batches(self):
        docs = [doc(i) for i in range(100)]
        examples = epoch_examples(docs, range(100), random.Random(0), batch=10, bucket=3)
        self.assertEqual(sorted(e.doc_index for e in examples), list(range(100)))


if __name__ == "__main__":
    unittest.main()
