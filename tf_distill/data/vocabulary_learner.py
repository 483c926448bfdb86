"""A fast WordPiece vocabulary learner: frequency-ranked merges, as in BPE.

keras-hub's `compute_word_piece_vocabulary` (tensorflow-text's learner) takes 2-3 minutes
for an 8000-token vocabulary on both sides of Tatoeba English-Spanish (214k sentences) on
2 CPU cores; this one takes about 4 s (docs/BENCHMARKS.md). It starts from the characters
of the training words (`c` where one starts a word, `##c` where one continues it), then
repeatedly joins the adjacent pair of pieces that occurs most often in the training
words, weighted by word frequency, until the vocabulary is full. The result is an
ordinary WordPiece vocabulary (continuation pieces start with `##`) that keras-hub's
`WordPieceTokenizer` applies with its greedy longest-match rule; the Hugging Face
WordPiece trainer learns its vocabulary the same way.
"""

import heapq
from collections import defaultdict
from itertools import pairwise

SUFFIX = "##"


def learn_word_piece_vocabulary(word_counts, vocabulary_size, reserved_tokens):
    """Learns a WordPiece vocabulary from `{word: count}`.

    Args:
        word_counts: mapping from a pre-split word (no spaces, no punctuation inside) to
            its count in the training text.
        vocabulary_size: the size of the result, reserved tokens included.
        reserved_tokens: tokens placed first, in order (`[PAD]`, `[UNK]`, ...).

    Returns:
        A list of tokens: the reserved tokens, then the single characters (`c`, `##c`),
        then merged pieces in the order they were learned. Shorter than
        `vocabulary_size` when the training words run out of pairs to merge.

    Raises:
        ValueError: `vocabulary_size` cannot hold the reserved tokens and the characters.
    """
    words = [list(word) for word in word_counts]
    counts = list(word_counts.values())
    for symbols in words:
        for i in range(1, len(symbols)):
            symbols[i] = SUFFIX + symbols[i]

    vocabulary = list(reserved_tokens)
    known = set(vocabulary)
    for token in sorted({symbol for symbols in words for symbol in symbols}):
        if token not in known:
            known.add(token)
            vocabulary.append(token)
    if len(vocabulary) > vocabulary_size:
        raise ValueError(
            f"`vocabulary_size`={vocabulary_size} is too small: the training text needs "
            f"{len(vocabulary) - len(reserved_tokens)} single-character pieces (`c` at the "
            f"start of a word, `##c` inside one) besides {len(reserved_tokens)} reserved "
            "tokens. Use a larger vocabulary_size."
        )

    # Pair counts, the words that hold (or once held) each pair, and a max-heap of
    # (-count, pair). A pair is pushed whenever its count grows; an entry whose count has
    # since fallen is re-pushed with the current count when it reaches the top.
    pair_counts = defaultdict(int)
    pair_words = defaultdict(set)
    for index, symbols in enumerate(words):
        count = counts[index]
        for pair in pairwise(symbols):
            pair_counts[pair] += count
            pair_words[pair].add(index)
    heap = [(-count, pair) for pair, count in pair_counts.items()]
    heapq.heapify(heap)

    while len(vocabulary) < vocabulary_size and heap:
        negative_count, pair = heapq.heappop(heap)
        count = pair_counts.get(pair, 0)
        if count != -negative_count:
            if count > 0:
                heapq.heappush(heap, (-count, pair))
            continue
        merged = pair[0] + pair[1].removeprefix(SUFFIX)
        if merged not in known:
            known.add(merged)
            vocabulary.append(merged)
        delta = defaultdict(int)
        for index in pair_words.pop(pair):
            symbols = words[index]
            merged_symbols = _merge(symbols, pair, merged)
            if merged_symbols is symbols:  # the word lost this pair to an earlier merge
                continue
            words[index] = merged_symbols
            count = counts[index]
            for old in pairwise(symbols):
                delta[old] -= count
            for new in pairwise(merged_symbols):
                delta[new] += count
                pair_words[new].add(index)
        for changed, change in delta.items():
            if change:
                pair_counts[changed] += change
                if change > 0:
                    heapq.heappush(heap, (-pair_counts[changed], changed))
        del pair_counts[pair]
    return vocabulary


def _merge(symbols, pair, merged):
    """`symbols` with each adjacent `pair` joined into `merged`; `symbols` if none is."""
    first, second = pair
    if first not in symbols:
        return symbols
    out = []
    i = 0
    last = len(symbols) - 1
    changed = False
    while i <= last:
        if i < last and symbols[i] == first and symbols[i + 1] == second:
            out.append(merged)
            i += 2
            changed = True
        else:
            out.append(symbols[i])
            i += 1
    return out if changed else symbols
