"""The emulator's toy models: deterministic answers for the four kinds of inference, at
little cost.

- Completions and chat: text of exactly ``max_new_tokens`` whitespace-separated words that
  never repeats an n-gram of ``no_repeat_ngram_size`` words. The same request always gives
  the same text; each generation setting (and the prompt or conversation, the project and
  the deployment) changes it. Its cost is linear in the length whatever the settings (see
  `choose_words`), so no request can tie up the emulator's event loop.
- Embeddings: a unit vector of `EMBEDDING_SIZE` floats derived from a hash of the sentence
  alone (the same sentence, the same vector, on any deployment), and the distances between
  two of them (`compare`).
- Classification: one of `CLASSIFICATION_LABELS`, chosen by a hash of the sentence.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import math
import random
from collections.abc import Iterator

import msgspec

from ..models import GetChatCompletionsFromDeploymentRequestBody as ChatBody
from ..models import GetCompletionsFromDeploymentRequestBody as RequestBody

DEFAULT_MAX_NEW_TOKENS = 16
"""Words generated when a request does not set ``max_new_tokens``."""
MAX_NEW_TOKENS_LIMIT = 4096
"""The emulator refuses (400) requests for more words than this."""
VOCABULARY_SIZE = 512
"""Words ``0`` to ``VOCABULARY_SIZE - 1`` are the vocabulary; later ones are fresh words."""
CANDIDATES_PER_WORD = 4
"""At most this many candidates are tried for a word before a fresh one is used instead."""
EMBEDDING_SIZE = 32
"""The length of every embedding vector."""
CLASSIFICATION_LABELS = ("positive", "negative", "neutral")
"""The classes a classification answers with."""

_CONSONANTS = "bdfgklmnprstvz"
_VOWELS = "aeiou"
_SYLLABLES = [c + v for c in _CONSONANTS for v in _VOWELS]
# n-grams are compared by a polynomial hash modulo a Mersenne prime: equal n-grams hash
# alike, so a collision can only refuse a candidate that was fine, never let a repeat through.
_HASH_MODULUS = (1 << 61) - 1
_HASH_BASE = 0x9E3779B97F4A7C15 % _HASH_MODULUS


def word(index: int) -> str:
    """The index-th word of an endless vocabulary of distinct pronounceable words."""
    base = len(_SYLLABLES)
    parts = [_SYLLABLES[index % base]]
    index //= base
    parts.append(_SYLLABLES[index % base])
    index //= base
    while index:
        parts.append(_SYLLABLES[index % base])
        index //= base
    return "".join(parts)


def generate_completion(project_id: str, deployment_id: str, body: RequestBody) -> str:
    """The deterministic completion for a request."""
    return _generate(project_id, deployment_id, body)


def generate_chat_completion(project_id: str, deployment_id: str, body: ChatBody) -> str:
    """The deterministic reply to a conversation (and its settings)."""
    return _generate(project_id, deployment_id, body)


def embed(sentence: str) -> list[float]:
    """The embedding of `sentence`: `EMBEDDING_SIZE` floats of Euclidean norm 1."""
    digest = hashlib.shake_256(
        sentence.encode("utf-8", "surrogatepass"), usedforsecurity=False
    ).digest(EMBEDDING_SIZE)
    raw = [(byte - 127.5) / 127.5 for byte in digest]  # never 0: the norm is never 0
    norm = math.sqrt(sum(x * x for x in raw))
    return [x / norm for x in raw]


def compare(a: list[float], b: list[float]) -> tuple[float, float, float]:
    """The cosine similarity, Manhattan distance and Euclidean distance of two vectors."""
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norms = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    manhattan = sum(abs(x - y) for x, y in zip(a, b, strict=True))
    euclidean = math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b, strict=True)))
    return (dot / norms if norms else 0.0), manhattan, euclidean


def classify(sentence: str) -> str:
    """The class of `sentence`: one of `CLASSIFICATION_LABELS`."""
    digest = hashlib.sha256(
        sentence.encode("utf-8", "surrogatepass"), usedforsecurity=False
    ).digest()
    return CLASSIFICATION_LABELS[digest[0] % len(CLASSIFICATION_LABELS)]


def _generate(project_id: str, deployment_id: str, body: RequestBody | ChatBody) -> str:
    """Text for a request: seeded by all of it, as long and as varied as it asks."""
    seed = hashlib.sha256(
        msgspec.json.encode([project_id, deployment_id, body]), usedforsecurity=False
    ).digest()
    vocabulary = VOCABULARY_SIZE if not body.top_k else min(body.top_k, VOCABULARY_SIZE)
    draw = functools.partial(random.Random(seed).randrange, vocabulary)
    words = choose_words(
        iter(draw, None),  # endless: randrange never returns None
        body.max_new_tokens or DEFAULT_MAX_NEW_TOKENS,
        body.no_repeat_ngram_size or 0,
    )
    return " ".join(map(word, words))


def choose_words(candidates: Iterator[int], length: int, no_repeat_ngram_size: int) -> list[int]:
    """The indices (for `word`) of a text of `length` words that never repeats an n-gram of
    `no_repeat_ngram_size` words (0: any may repeat).

    Each word is the first of at most `CANDIDATES_PER_WORD` `candidates` (vocabulary
    indices, below `VOCABULARY_SIZE`) that completes no n-gram seen before; when all of
    them would, it is a fresh word, found nowhere else in the text, so no n-gram holding it
    can repeat. Checking a candidate costs the same whatever the n-gram size (a rolling
    hash), so the whole is linear in `length`: at most ``CANDIDATES_PER_WORD * length``
    candidates are drawn, whatever the settings.
    """
    n = no_repeat_ngram_size
    if n == 0:
        return list(itertools.islice(candidates, length))
    shift = pow(_HASH_BASE, n - 1, _HASH_MODULUS)  # a word's weight n - 1 words later
    prefixes = [0]  # prefixes[i]: the hash of the first i words
    seen: set[int] = set()  # the hashes of the n-grams so far
    words: list[int] = []
    for position in range(length):
        start = position - (n - 1)  # where an n-gram ending at this word starts
        if start < 0:  # no n-gram ends here yet: any candidate will do
            words.append(next(candidates))
        else:
            head = (prefixes[position] - prefixes[start] * shift) % _HASH_MODULUS
            choice = VOCABULARY_SIZE + position  # a fresh word, unless a candidate fits
            for candidate in itertools.islice(candidates, CANDIDATES_PER_WORD):
                if (head * _HASH_BASE + candidate) % _HASH_MODULUS not in seen:
                    choice = candidate
                    break
            seen.add((head * _HASH_BASE + choice) % _HASH_MODULUS)
            words.append(choice)
        prefixes.append((prefixes[-1] * _HASH_BASE + words[-1]) % _HASH_MODULUS)
    return words
