"""BERT WordPiece tokenization, matching the serving tokenizer, and a WordPiece vocabulary trainer.

Serving (gpu-worker/src/model/tokenizer/) runs HF `tokenizers` with BertNormalizer(clean_text,
handle_chinese_chars, strip_accents=None -> follows lowercase, lowercase=True), BertPreTokenizer and a
WordPiece model (greedy longest match, "##" continuation, max 100 chars a word). This module mirrors
those steps so the trainer sees exactly the ids the service computes; the fidelity test checks it.

The trainer is the algorithm HF's WordPieceTrainer uses: BPE merges over the pre-tokenized word counts,
with every non-initial symbol carrying the "##" prefix, until the vocabulary has the requested size.
"""
from __future__ import annotations

import heapq
import unicodedata
from collections import Counter, defaultdict
from typing import Dict, Iterable, List, Sequence, Tuple

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
PAD, UNK, CLS, SEP, MASK = range(5)
MAX_INPUT_CHARS_PER_WORD = 100


def _is_control(ch: str) -> bool:
    if ch in "\t\n\r":
        return False
    return unicodedata.category(ch).startswith("C")


def _is_whitespace(ch: str) -> bool:
    return ch in " \t\n\r" or unicodedata.category(ch) == "Zs"


def _is_chinese(cp: int) -> bool:
    return (
        0x4E00 <= cp <= 0x9FFF
        or 0x3400 <= cp <= 0x4DBF
        or 0x20000 <= cp <= 0x2A6DF
        or 0x2A700 <= cp <= 0x2B73F
        or 0x2B740 <= cp <= 0x2B81F
        or 0x2B820 <= cp <= 0x2CEAF
        or 0xF900 <= cp <= 0xFAFF
        or 0x2F800 <= cp <= 0x2FA1F
    )


def _is_punctuation(ch: str) -> bool:
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def normalize(text: str) -> str:
    """BertNormalizer(clean_text, handle_chinese_chars, strip_accents, lowercase)."""
    out = []
    for ch in text:
        cp = ord(ch)
        if cp == 0 or cp == 0xFFFD or _is_control(ch):
            continue
        if _is_whitespace(ch):
            out.append(" ")
        elif _is_chinese(cp):
            out.append(f" {ch} ")
        else:
            out.append(ch)
    text = unicodedata.normalize("NFD", "".join(out))
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Mn")
    return text.lower()


def pre_tokenize(text: str) -> List[str]:
    """BertPreTokenizer on normalized text: split on whitespace, isolate each punctuation char."""
    words: List[str] = []
    current: List[str] = []
    for ch in text:
        if ch.isspace():
            if current:
                words.append("".join(current))
                current = []
        elif _is_punctuation(ch):
            if current:
                words.append("".join(current))
                current = []
            words.append(ch)
        else:
            current.append(ch)
    if current:
        words.append("".join(current))
    return words


def words_of(text: str) -> List[str]:
    return pre_tokenize(normalize(text))


class WordPieceTokenizer:
    def __init__(self, vocab: Sequence[str]):
        self.vocab = list(vocab)
        self.ids: Dict[str, int] = {tok: i for i, tok in enumerate(self.vocab)}
        for i, tok in enumerate(SPECIAL_TOKENS):
            if self.ids.get(tok) != i:
                raise ValueError(f"vocab must start with {SPECIAL_TOKENS}, {tok} is not at id {i}")
        self._cache: Dict[str, List[int]] = {}

    def word_ids(self, word: str) -> List[int]:
        cached = self._cache.get(word)
        if cached is not None:
            return cached
        ids: List[int] = []
        if len(word) > MAX_INPUT_CHARS_PER_WORD:
            ids = [UNK]
        else:
            start = 0
            while start < len(word):
                end = len(word)
                piece_id = None
                while start < end:
                    piece = word[start:end] if start == 0 else "##" + word[start:end]
                    piece_id = self.ids.get(piece)
                    if piece_id is not None:
                        break
                    end -= 1
                if piece_id is None:
                    ids = [UNK]
                    break
                ids.append(piece_id)
                start = end
        if len(self._cache) < 500_000:
            self._cache[word] = ids
        return ids

    def encode(self, text: str, max_length: int) -> List[int]:
        """[CLS] pieces [SEP], truncated to max_length like HF truncation=True for one sequence."""
        pieces: List[int] = []
        budget = max_length - 2
        for word in words_of(text):
            pieces.extend(self.word_ids(word))
            if len(pieces) >= budget:
                break
        return [CLS] + pieces[:budget] + [SEP]


def train_wordpiece(texts: Iterable[str], vocab_size: int, min_frequency: int = 2, alphabet_size: int = 1000) -> List[str]:
    """A WordPiece vocabulary of at most `vocab_size` tokens: specials, the alphabet, then BPE merges."""
    counts: Counter = Counter()
    for text in texts:
        counts.update(words_of(text))
    char_counts: Counter = Counter()
    for word, n in counts.items():
        for i, ch in enumerate(word):
            char_counts[ch if i == 0 else "##" + ch] += n
    alphabet = {sym for sym, _ in char_counts.most_common(alphabet_size)}
    vocab: List[str] = list(SPECIAL_TOKENS) + sorted(alphabet)
    seen = set(vocab)

    words: List[List[str]] = []
    freqs: List[int] = []
    for word, n in counts.items():
        if n < min_frequency or len(word) > MAX_INPUT_CHARS_PER_WORD:
            continue
        symbols = [ch if i == 0 else "##" + ch for i, ch in enumerate(word)]
        if all(s in alphabet for s in symbols):
            words.append(symbols)
            freqs.append(n)

    pair_counts: Dict[Tuple[str, str], int] = defaultdict(int)
    where: Dict[Tuple[str, str], set] = defaultdict(set)
    for w, symbols in enumerate(words):
        for a, b in zip(symbols, symbols[1:]):
            pair_counts[(a, b)] += freqs[w]
            where[(a, b)].add(w)
    # Max-heap with lazy invalidation; ties broken by the pair itself so the result is deterministic.
    heap = [(-n, pair) for pair, n in pair_counts.items()]
    heapq.heapify(heap)

    def merged(a: str, b: str) -> str:
        return a + (b[2:] if b.startswith("##") else b)

    while len(vocab) < vocab_size and heap:
        neg, pair = heapq.heappop(heap)
        if pair_counts.get(pair, 0) != -neg:
            continue  # stale entry
        if -neg < min_frequency:
            break
        a, b = pair
        new = merged(a, b)
        if new not in seen:
            seen.add(new)
            vocab.append(new)
        changed: Dict[Tuple[str, str], int] = defaultdict(int)
        for w in list(where.pop(pair, ())):
            symbols = words[w]
            n = freqs[w]
            i = 0
            out: List[str] = []
            old_pairs = list(zip(symbols, symbols[1:]))
            while i < len(symbols):
                if i + 1 < len(symbols) and symbols[i] == a and symbols[i + 1] == b:
                    out.append(new)
                    i += 2
                else:
                    out.append(symbols[i])
                    i += 1
            for p in old_pairs:
                changed[p] -= n
            new_pairs = list(zip(out, out[1:]))
            for p in new_pairs:
                changed[p] += n
            for p in set(old_pairs) - set(new_pairs):
                where[p].discard(w)
            for p in new_pairs:
                where[p].add(w)
            words[w] = out
        pair_counts.pop(pair, None)
        for p, delta in changed.items():
            if p == pair or delta == 0:
                continue
            pair_counts[p] += delta
            if pair_counts[p] <= 0:
                pair_counts.pop(p, None)
            else:
                heapq.heappush(heap, (-pair_counts[p], p))
    return vocab
