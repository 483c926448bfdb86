"""A trained WordPiece subword tokenizer with the project's special tokens.

Text is normalised (Unicode NFC, any whitespace to one space, optionally case-folded;
accents are kept), split into words and punctuation exactly as keras-hub's
`WordPieceTokenizer` splits it, and each word is cut into the longest vocabulary pieces
from the left. Ids are identical to `keras_hub.tokenizers.WordPieceTokenizer` with the
same vocabulary (see `keras_hub_tokenizer()`); this class does the same work in Python
with a per-word cache, which on 2 CPU cores is several times faster than keras-hub's
eager call for a whole corpus, and needs no TensorFlow.

Files: `save()` writes the vocabulary as plain text, one token a line, line number = id
(the format keras-hub, tensorflow-text and a mobile app read), and the settings as JSON.
"""

import hashlib
import json
import os
import unicodedata
from collections import Counter
from itertools import chain

import numpy as np
import regex

from tf_distill.data.errors import DataError, located
from tf_distill.data.vocabulary_learner import SUFFIX, learn_word_piece_vocabulary
from tf_distill.run_dir import write_text

PAD, UNK, START, END = "[PAD]", "[UNK]", "[START]", "[END]"
SPECIAL_TOKENS = (PAD, UNK, START, END)
# keras-hub maps words longer than this many UTF-8 bytes to the unknown token.
_MAX_BYTES_PER_WORD = 100

# keras-hub's word splitting (split=True, split_on_cjk=True): whitespace and control
# characters separate words; punctuation and CJK characters are words of their own. ASCII
# symbols such as $ + < = > ^ ` | ~ count as punctuation.
_PUNCTUATION = r"[!-/:-@\[-`{-~\p{P}]"
_CJK = (
    r"[\u4E00-\u9FFF\u3400-\u4DBF\U00020000-\U0002A6DF\U0002A700-\U0002B73F"
    r"\U0002B740-\U0002B81F\U0002B820-\U0002CEAF\uF900-\uFAFF\U0002F800-\U0002FA1F]"
)
_WORDS = regex.compile(
    rf"{_PUNCTUATION}|{_CJK}|[^\s\p{{Cc}}\p{{Cf}}{_PUNCTUATION[1:-1]}{_CJK[1:-1]}]+"
)
_HAS_CJK = regex.compile(_CJK).search

# Detokenization: where spaces go around punctuation (English, French and Spanish usage,
# without the French space before ? ! : ;).
_NO_SPACE_BEFORE = set(".,;:!?)]}»”’%…")
_NO_SPACE_AFTER = set("¿¡([{«“‘$")
_JOINERS = set("'’-/")  # l'homme, don't, est-ce, 1/2: no space on either side
_NUMBER_JOINERS = set(".,:")  # 3,5 and 9:30 and 1.000 between digits


class Tokenizer:
    """A WordPiece tokenizer with `[PAD]`=0, `[UNK]`=1, `[START]`=2 and `[END]`=3.

    Train it on the train split only (`Tokenizer.train`), save it beside the model, load
    it in the app. Use one tokenizer for both languages (a shared vocabulary) or one per
    language; the pipeline takes a source and a target tokenizer either way.

    Args:
        vocabulary: list of tokens, the four special tokens first, in that order.
        lowercase: case-fold text before splitting (then detokenized text is lowercase).

    Example:
    >>> tokenizer = Tokenizer.train(["¿Dónde está?", "Está aquí."], vocabulary_size=60)
    >>> ids = tokenizer.tokenize(["¿Dónde está?"])
    >>> tokenizer.detokenize(ids)
    ['¿Dónde está?']
    """

    pad_id, unk_id, start_id, end_id = 0, 1, 2, 3

    def __init__(self, vocabulary, lowercase=False):
        vocabulary = list(vocabulary)
        if tuple(vocabulary[:4]) != SPECIAL_TOKENS:
            raise ValueError(
                f"The vocabulary must start with {list(SPECIAL_TOKENS)}. Received: {vocabulary[:4]}"
            )
        if len(set(vocabulary)) != len(vocabulary):
            raise ValueError("The vocabulary has duplicate tokens.")
        self.vocabulary = vocabulary
        self.lowercase = bool(lowercase)
        self._ids = {token: i for i, token in enumerate(vocabulary)}
        self._cache = {}

    @property
    def vocabulary_size(self):
        return len(self.vocabulary)

    @property
    def fingerprint(self):
        """A short hash of the vocabulary (every token, in order) and the case folding:
        two tokenizers with the same fingerprint give every text the same ids."""
        digest = hashlib.sha256("\n".join(self.vocabulary).encode("utf-8"))
        digest.update(b"lowercase" if self.lowercase else b"cased")
        return digest.hexdigest()[:16]

    @property
    def special_ids(self):
        """`{"start_id", "end_id", "pad_id"}`: the keyword arguments that
        `tf_distill.decoding` and `tf_distill.export.export_student(special=...)` take."""
        return {"start_id": self.start_id, "end_id": self.end_id, "pad_id": self.pad_id}

    def encode_batch(self, texts, max_length=None):
        """Token ids of `texts` as one int32 array (N, L), padded at the end with `pad_id`.

        L is the longest row, at most `max_length` (longer rows are cut there; count them
        with `tokenize` if that matters). No start or end id is added: this is what a
        model's `encoder_token_ids` takes.
        """
        if isinstance(texts, str):
            raise TypeError("`texts` must be a list of strings; for one sentence pass [text].")
        rows = self.tokenize(list(texts))
        if max_length is not None:
            rows = [row[: int(max_length)] for row in rows]
        width = max((len(row) for row in rows), default=0)
        out = np.full((len(rows), max(width, 1)), self.pad_id, np.int32)
        for i, row in enumerate(rows):
            out[i, : len(row)] = row
        return out

    def decode_batch(self, ids):
        """Strings from a batch of ids (each row read up to its first `[END]`)."""
        return self.detokenize([list(row) for row in np.asarray(ids).tolist()])

    @classmethod
    def train(cls, texts, vocabulary_size, lowercase=False, learner="fast"):
        """Learns a vocabulary from `texts` (the train split) and returns a `Tokenizer`.

        Args:
            texts: iterable of strings.
            vocabulary_size: the most tokens, special tokens included. The result can be
                smaller when the text runs out of pieces to merge.
            lowercase: case-fold first.
            learner: `"fast"` (frequency-ranked merges, `vocabulary_learner.py`, seconds
                for 200k sentences) or `"keras_hub"`
                (`keras_hub.tokenizers.compute_word_piece_vocabulary`, minutes).
        """
        if isinstance(vocabulary_size, bool) or not isinstance(vocabulary_size, int):
            raise ValueError(
                f"`vocabulary_size` must be an int. Received: vocabulary_size={vocabulary_size!r}"
            )
        texts = list(texts)
        if not any(text.strip() for text in texts):
            raise ValueError("Cannot train a tokenizer on no text: `texts` is empty.")
        if learner == "fast":
            # Count space-separated chunks first: far fewer distinct ones than words seen.
            chunks = Counter(
                chain.from_iterable(unicodedata.normalize("NFC", text).split() for text in texts)
            )
            counts = Counter()
            for chunk, count in chunks.items():
                for word in split_words(_case_fold(chunk) if lowercase else chunk):
                    counts[word] += count
            vocabulary = learn_word_piece_vocabulary(counts, vocabulary_size, SPECIAL_TOKENS)
        elif learner == "keras_hub":
            normalized = [normalize(text, lowercase) for text in texts]
            vocabulary = _keras_hub_vocabulary(normalized, vocabulary_size)
        else:
            raise ValueError(
                f"`learner` must be 'fast' or 'keras_hub'. Received: learner={learner!r}"
            )
        return cls(vocabulary, lowercase=lowercase)

    # Encoding. ---------------------------------------------------------------------------

    def tokenize(self, texts):
        """Token ids: a list of int lists for a list of strings, an int list for one string."""
        if isinstance(texts, str):
            return self._encode(texts)
        return [self._encode(text) for text in texts]

    def _encode(self, text):
        # The cache maps a space-separated chunk ("está?") to its ids, so the common case is
        # one dict lookup per chunk. Splitting a chunk gives the same words as splitting
        # the whole text (whitespace always separates words).
        ids = []
        cache = self._cache
        for chunk in unicodedata.normalize("NFC", text).split():
            pieces = cache.get(chunk)
            if pieces is None:
                pieces = cache[chunk] = self._encode_chunk(chunk)
            ids.extend(pieces)
        return ids

    def _encode_chunk(self, chunk):
        if self.lowercase:
            chunk = _case_fold(chunk)
        pieces = []
        for word in split_words(chunk):
            pieces.extend(self._pieces(word))
        return tuple(pieces)

    def _pieces(self, word):
        """Greedy longest-match-first WordPiece, as keras-hub and tensorflow-text do it."""
        if len(word.encode("utf-8")) > _MAX_BYTES_PER_WORD:
            return (self.unk_id,)
        ids = []
        start = 0
        vocabulary = self._ids
        while start < len(word):
            end = len(word)
            found = None
            while start < end:
                piece = word[start:end] if start == 0 else SUFFIX + word[start:end]
                found = vocabulary.get(piece)
                if found is not None:
                    break
                end -= 1
            if found is None:
                return (self.unk_id,)
            ids.append(found)
            start = end
        return tuple(ids)

    # Decoding. ---------------------------------------------------------------------------

    def detokenize(self, ids):
        """Text from ids: stops at the first `[END]`, drops `[PAD]` and `[START]`.

        Subword pieces are joined into words and punctuation is re-attached by the usual
        spacing rules (`¿Dónde está?`, `l'élève`, `3,5`), so text in those conventions
        round-trips. `[UNK]` stays visible as `[UNK]`.

        Args:
            ids: a batch (list of lists, 2-D array or tensor) or one sequence (1-D).

        Returns:
            A list of strings for a batch, a string for one sequence.
        """
        if hasattr(ids, "numpy"):
            ids = ids.numpy()
        if hasattr(ids, "tolist"):
            ids = ids.tolist()
        ids = list(ids)
        if not ids or isinstance(ids[0], int):
            return self._decode(ids)
        return [self._decode(list(row)) for row in ids]

    def _decode(self, ids):
        words = []
        vocabulary = self.vocabulary
        for token_id in ids:
            token_id = int(token_id)
            if token_id == self.end_id:
                break
            if token_id in (self.pad_id, self.start_id):
                continue
            if not 0 <= token_id < len(vocabulary):
                raise ValueError(
                    f"Token id {token_id} is outside the vocabulary (size {len(vocabulary)})."
                )
            token = vocabulary[token_id]
            if token.startswith(SUFFIX) and len(token) > len(SUFFIX):
                if words:
                    words[-1] += token[len(SUFFIX) :]
                else:
                    words.append(token[len(SUFFIX) :])
            else:
                words.append(token)
        return join_words(words)

    # Files. ------------------------------------------------------------------------------

    def save(self, directory, prefix="tokenizer"):
        """Writes `{prefix}_vocab.txt` and `{prefix}_tokenizer.json` into `directory`.

        Returns:
            The path of the vocabulary file.
        """
        os.makedirs(directory, exist_ok=True)
        vocabulary_path = os.path.join(directory, f"{prefix}_vocab.txt")
        write_text(vocabulary_path, "".join(token + "\n" for token in self.vocabulary))
        config = {
            "vocabulary_file": os.path.basename(vocabulary_path),
            "vocabulary_size": self.vocabulary_size,
            "lowercase": self.lowercase,
            "normalization": "NFC, whitespace runs to one space"
            + (", NFKC case fold" if self.lowercase else ""),
            "suffix_indicator": SUFFIX,
            "special_tokens": {token: i for i, token in enumerate(SPECIAL_TOKENS)},
        }
        write_text(
            os.path.join(directory, f"{prefix}_tokenizer.json"),
            json.dumps(config, indent=2, ensure_ascii=False) + "\n",
        )
        return vocabulary_path

    @classmethod
    def load(cls, directory, prefix="tokenizer"):
        """Reads what `save(directory, prefix)` wrote."""
        config_path = os.path.join(directory, f"{prefix}_tokenizer.json")
        vocabulary_path = os.path.join(directory, f"{prefix}_vocab.txt")
        for path in (config_path, vocabulary_path):
            if not os.path.exists(path):
                raise DataError(
                    f"{located(path)}: file not found; was the tokenizer saved "
                    f"with prefix={prefix!r}?"
                )
        with open(config_path, encoding="utf-8") as file:
            config = json.load(file)
        with open(vocabulary_path, encoding="utf-8") as file:
            vocabulary = file.read().split("\n")
        if vocabulary and vocabulary[-1] == "":
            vocabulary.pop()
        return cls(vocabulary, lowercase=config.get("lowercase", False))

    def keras_hub_tokenizer(self, **kwargs):
        """The same tokenizer as a `keras_hub.tokenizers.WordPieceTokenizer` layer.

        It gives the same ids for normalised text (NFC, single spaces), inside a
        `tf.data` map or a Keras model. Extra keyword arguments go to its constructor
        (e.g. `sequence_length`).
        """
        import keras_hub

        return keras_hub.tokenizers.WordPieceTokenizer(
            vocabulary=self.vocabulary,
            lowercase=self.lowercase,
            strip_accents=False,
            suffix_indicator=SUFFIX,
            oov_token=UNK,
            **kwargs,
        )


def normalize(text, lowercase=False):
    """NFC, whitespace runs (any Unicode space) to one ASCII space, optional case fold."""
    text = " ".join(unicodedata.normalize("NFC", text).split())
    return _case_fold(text) if lowercase else text


def _case_fold(text):
    # keras-hub's case folding: NFKC_Casefold.
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())


def split_words(text):
    """Normalised text to words and punctuation marks, as keras-hub's WordPiece splits it."""
    words = []
    for token in text.split(" "):
        # Most tokens are plain words; only the others need the (slower) full pattern.
        if token.isalnum() and (token.isascii() or not _HAS_CJK(token)):
            words.append(token)
        else:
            words.extend(_WORDS.findall(token))
    return words


def join_words(words):
    """Joins words and punctuation into text: `["¿", "Dónde", "está", "?"]` -> `¿Dónde está?`."""
    parts = []
    no_space = True  # no space before the next word
    open_quote = False
    for i, word in enumerate(words):
        previous = words[i - 1] if i else ""
        following = words[i + 1] if i + 1 < len(words) else ""
        space = not no_space
        no_space = False
        if word == '"':
            open_quote = not open_quote
            if open_quote:
                no_space = True
            else:
                space = False
        elif word in _NO_SPACE_BEFORE and not (
            word in _NUMBER_JOINERS and _digits(previous, following)
        ):
            space = False
        elif word in _NO_SPACE_AFTER:
            no_space = True
        if word in _JOINERS and previous and following:
            space = False
            no_space = True
        elif word in _JOINERS and not previous:
            no_space = True  # an opening quote at the start
        elif word in _NUMBER_JOINERS and _digits(previous, following):
            space = False
            no_space = True
        elif word == "." and _initial(previous) and _initial(following):  # p.m., L.A.
            no_space = True
        if space and parts:
            parts.append(" ")
        parts.append(word)
    return "".join(parts)


def _digits(previous, following):
    return previous[-1:].isdigit() and following[:1].isdigit()


def _initial(word):
    return len(word) == 1 and word.isalpha()


def _keras_hub_vocabulary(texts, vocabulary_size):
    import keras_hub
    import tensorflow as tf

    # A list would be read as file names; a dataset of strings is read as text.
    data = tf.data.Dataset.from_tensor_slices(texts).batch(1000)
    vocabulary = keras_hub.tokenizers.compute_word_piece_vocabulary(
        data,
        vocabulary_size,
        lowercase=False,  # already done by normalize()
        strip_accents=False,
        suffix_indicator=SUFFIX,
        reserved_tokens=list(SPECIAL_TOKENS),
    )
    return vocabulary
