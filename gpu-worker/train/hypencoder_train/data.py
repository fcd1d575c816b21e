"""Training examples from the Debian corpus (infra/dev/corpus/debian-main.jsonl.gz).

A model trained only on synopsis -> "synopsis + description" learns that the query is the document's
first line (an earlier trial here: P@10 0.03 on natural-language queries). So the examples here never
let a query be found verbatim at the start of its document:
- synopsis queries are paired with the long description alone (the synopsis removed);
- keyword queries are a few consecutive words cropped from the synopsis;
- tag queries render some of the package's Debtags as words ("use::editing" -> "editing"), and other
  documents of the batch that carry the same tags are not counted as negatives.
Documents of keyword and tag queries keep their synopsis half of the time, as the searched collection does.
"""
from __future__ import annotations

import gzip
import json
import random
from dataclasses import dataclass
from typing import FrozenSet, List, Optional, Sequence

# Facets that describe what a package is for, in words a user might type. Packaging facets
# (role, suite, special, implemented-in, uitoolkit, ...) would only teach noise.
QUERY_FACETS = {"use", "works-with", "works-with-format", "field", "game", "interface", "network", "hardware", "security", "sound", "web", "office", "mail", "junior", "science", "biology", "accessibility", "x11", "admin", "devel", "protocol", "scope"}
FACET_WORDS = {"game": "game", "devel": "development", "sound": "sound", "security": "security", "network": "network", "hardware": "hardware", "science": "science", "biology": "biology", "web": "web", "mail": "mail", "office": "office"}
SKIP_VALUES = {"TODO", "application", "program", "commandline", "shlib", "library", "utility", "plugin", "service"}


@dataclass
class Document:
    id: str
    title: str
    text: str
    description: str
    source: str
    tags: FrozenSet[str]
    split: str


def load_corpus(path: str) -> List[Document]:
    docs = []
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            meta = d["metadata"]
            description = d["text"].split("\n", 1)[1] if "\n" in d["text"] else d["text"]
            docs.append(Document(d["id"], d["title"], d["text"], description, meta["source"], frozenset(meta["tags"]), meta["split"]))
    return docs


def tag_words(tag: str) -> Optional[str]:
    """'works-with::text' -> 'text', 'game::strategy' -> 'strategy game', packaging facets -> None."""
    facet, _, value = tag.partition("::")
    if facet not in QUERY_FACETS or value in SKIP_VALUES:
        return None
    words = value.replace(":", " ").replace("-", " ").replace("_", " ").replace("+", " ")
    if facet == "devel" and value.startswith("lang:"):
        words = value[5:] + " programming"
    extra = FACET_WORDS.get(facet)
    return f"{words} {extra}" if extra and extra not in words else words


@dataclass
class Example:
    query: str
    doc: str
    doc_index: int
    # Tags the query stands for: in-batch documents carrying all of them are positives too, not negatives.
    query_tags: FrozenSet[str]


def make_example(docs: Sequence[Document], i: int, rng: random.Random) -> Example:
    d = docs[i]
    usable_tags = sorted(t for t in d.tags if tag_words(t))
    kind = rng.random()
    if kind < 0.3 and usable_tags:
        chosen = rng.sample(usable_tags, k=min(len(usable_tags), rng.choice([1, 2, 2, 3])))
        query = " ".join(tag_words(t) for t in chosen)
        return Example(query, d.text if rng.random() < 0.5 else d.description, i, frozenset(chosen))
    if kind < 0.55:
        words = d.title.split()
        if len(words) > 3:
            n = rng.randint(2, min(4, len(words) - 1))
            start = rng.randint(0, len(words) - n)
            query = " ".join(words[start : start + n])
            return Example(query, d.text if rng.random() < 0.5 else d.description, i, frozenset())
    return Example(d.title, d.description, i, frozenset())


def epoch_examples(docs: Sequence[Document], indices: Sequence[int], rng: random.Random, batch: int, bucket: int = 32) -> List[Example]:
    """One pass over `indices` in shuffled batches of similar document length (so little padding is
    computed): chunks of `bucket` batches are sorted by length, cut into batches, and the batches shuffled."""
    order = list(indices)
    rng.shuffle(order)
    examples = [make_example(docs, i, rng) for i in order]
    batches: List[List[Example]] = []
    span = batch * bucket
    for s in range(0, len(examples), span):
        chunk = sorted(examples[s : s + span], key=lambda e: len(e.doc))
        batches.extend(chunk[b : b + batch] for b in range(0, len(chunk), batch))
    rng.shuffle(batches)
    return [e for b in batches if len(b) == batch for e in b]
