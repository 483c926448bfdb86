"""Greedy decoding and beam search for `build_transformer` models, with a key/value cache.

Every decoder runs as a `tf.function` around one `tf.while_loop` over a fixed `max_length`.
With the cache each step embeds one token, writes its keys/values into a (B, 2L, T, N, H)
self-attention buffer of fixed size and reads the encoder keys/values projected once, so
every new token costs the same whatever its position. Without the cache each step re-runs
the whole decoder on the prefix (cost grows with the position); it is kept as the reference
the cached path is tested against.

Modules: `greedy` and `beam` hold the two loops, `steps` the graph pieces they share,
`checks` the argument checks and the cache of traced functions.

Output format, shared by every function here: int32 (B, max_length) ids that do not include
the start token; a row keeps its first end token and holds `pad_id` after it; a row that
never produced the end token is simply `max_length` tokens long. The pad id is never
generated (its logit is masked out: it marks "no token", and training never scores it).

Legend: B batch, S source length, T `max_length`, K beam size, V target vocabulary,
D model width, L decoder layers, N heads, H head size.
"""

import numbers
import warnings

import numpy as np
import tensorflow as tf

from tf_distill.decoding import checks
from tf_distill.decoding import lean as lean_loop
from tf_distill.decoding.beam import beam_loop
from tf_distill.decoding.greedy import greedy_loop
from tf_distill.errors import TFDistillWarning
from tf_distill.models import Seq2SeqParts, seq2seq_parts

__all__ = [
    "Seq2SeqParts",
    "beam_search",
    "greedy_decode",
    "make_translate_function",
    "seq2seq_parts",
    "translate_texts",
    "truncate_after_end",
]


def greedy_decode(
    model, encoder_token_ids, max_length, start_id=2, end_id=3, pad_id=0, use_cache=True
):
    """Decodes a batch greedily (the most likely next token at every step).

    Args:
        model: a seq2seq model built by `build_transformer`, or a list of them sharing one
            target vocabulary (an ensemble: each step takes the mean of their probabilities).
        encoder_token_ids: (B, S) int source ids padded with `pad_id` (list, array or tensor).
        max_length: number of target tokens to produce, at most the model's
            `max_sequence_length`.
        start_id: the token the decoder starts from (not part of the output).
        end_id: the token that ends a sequence (kept in the output).
        pad_id: padding id; it must be the model's own pad id, is written after the end
            token and is never generated.
        use_cache: decode incrementally with the key/value cache (True) or re-run the
            decoder on the whole prefix at each step (False, the slow reference).

    Returns:
        int32 tensor (B, max_length) in the module's output format. The loop stops as soon
        as every row has produced the end token; the shape does not change.

    Example:
    >>> model = build_transformer(vocabulary_size=50, max_sequence_length=16, num_layers=1,
    ...                           num_heads=2, hidden_dim=16, intermediate_dim=32)
    >>> greedy_decode(model, [[5, 6, 7, 0]], max_length=8).shape
    TensorShape([1, 8])
    """
    source = checks.check_source(encoder_token_ids)
    parts = checks.check_members(model, max_length, start_id, end_id, pad_id, source)
    key = (
        "greedy",
        max_length,
        start_id,
        end_id,
        pad_id,
        bool(use_cache),
        checks.member_ids(model),
    )

    def make():
        return tf.function(
            lambda ids: greedy_loop(parts, ids, max_length, start_id, end_id, pad_id, use_cache),
            input_signature=[tf.TensorSpec((None, None), tf.int32)],
        )

    return checks.cached_function(model, key, make)(source)


def beam_search(
    model,
    encoder_token_ids,
    max_length,
    beam_size=4,
    length_penalty=0.6,
    start_id=2,
    end_id=3,
    pad_id=0,
    return_scores=False,
):
    """Decodes a batch with beam search, using the key/value cache.

    Hypotheses are ranked by their GNMT score (Wu et al., 2016, eq. 14, without coverage):
    `log p(y | x) / ((5 + |y|) / 6) ** length_penalty`, where |y| counts the generated tokens
    including the end token (not the start token), and `log p` is the sum of the model's
    log-softmax over the non-pad tokens. `length_penalty=0` ranks by plain log-probability;
    larger values favour longer outputs.

    Each step extends the K live hypotheses by every token and keeps the 2K best
    extensions. As in fairseq, one that ends with the end token becomes a finished
    hypothesis only if it is among the K best extensions; the K best that did not end live
    on. An input stops once it has K finished hypotheses (later, longer hypotheses that the
    length penalty might prefer are not searched for), and at `max_length` the K best
    extensions finish whether they ended or not. Hence `beam_size=1` is exactly greedy
    decoding, and a beam large enough to keep every hypothesis is exhaustive search.

    Args:
        model: a seq2seq model built by `build_transformer`, or a list of them (an
            ensemble, scored by the log of the mean of their probabilities).
        encoder_token_ids: (B, S) int source ids padded with `pad_id`.
        max_length: number of target tokens to produce at most.
        beam_size: number of hypotheses K kept per input.
        length_penalty: the GNMT exponent alpha (>= 0).
        start_id, end_id, pad_id: as in `greedy_decode`.
        return_scores: also return the score of each best hypothesis.

    Returns:
        int32 tensor (B, max_length) of the best hypothesis per input, in the module's
        output format; with `return_scores`, also float32 (B,) scores as defined above.
    """
    source = checks.check_source(encoder_token_ids)
    parts = checks.check_members(model, max_length, start_id, end_id, pad_id, source)
    checks.check_positive_int("beam_size", beam_size)
    if (
        isinstance(length_penalty, bool)
        or not isinstance(length_penalty, numbers.Real)
        or not length_penalty >= 0
    ):
        raise ValueError(
            "`length_penalty` must be a number >= 0 (the GNMT exponent; 0 disables it). "
            f"Received: length_penalty={length_penalty!r}."
        )
    alpha = float(length_penalty)
    key = ("beam", max_length, beam_size, alpha, start_id, end_id, pad_id, checks.member_ids(model))

    def make():
        return tf.function(
            lambda ids: beam_loop(
                parts, ids, max_length, beam_size, alpha, start_id, end_id, pad_id
            ),
            input_signature=[tf.TensorSpec((None, None), tf.int32)],
        )

    token_ids, scores = checks.cached_function(model, key, make)(source)
    return (token_ids, scores) if return_scores else token_ids


def translate_texts(
    model,
    texts,
    source_tokenizer,
    target_tokenizer=None,
    max_length=None,
    beam_size=1,
    length_penalty=0.6,
    batch_size=64,
):
    """Translations of a list of strings by a Keras model (or an ensemble: a list).

    Tokenizes `texts`, cuts any longer than the model's encoder takes (with a
    `TFDistillWarning` naming how many), decodes them in batches (greedy, or beam search
    with `beam_size` > 1) and detokenizes.

    Args:
        model: a `build_transformer` model or a list of them.
        texts: a list of source sentences.
        source_tokenizer, target_tokenizer: `tf_distill.data.Tokenizer`s (the target one
            defaults to the source one: a shared vocabulary).
        max_length: most target tokens (default: the decoder's `max_sequence_length`).
        beam_size, length_penalty: as for `beam_search`.
        batch_size: sentences per call.

    Returns:
        A list of `len(texts)` strings.
    """
    target_tokenizer = target_tokenizer or source_tokenizer
    first = model[0] if isinstance(model, list | tuple) else model
    parts = seq2seq_parts(first)
    limit = parts.encoder_embedding.max_sequence_length
    max_length = max_length or parts.decoder_embedding.max_sequence_length
    checks.check_positive_int("beam_size", beam_size)
    checks.check_positive_int("batch_size", batch_size)
    texts = list(texts)
    cut = sum(len(row) > limit for row in source_tokenizer.tokenize(texts))
    if cut:
        warnings.warn(
            f"{cut} of {len(texts)} sentences are longer than the model's {limit} source "
            "tokens and were cut to that length.",
            TFDistillWarning,
            stacklevel=2,
        )
    special = target_tokenizer.special_ids
    out = []
    for start in range(0, len(texts), batch_size):
        ids = source_tokenizer.encode_batch(texts[start : start + batch_size], limit)
        if beam_size > 1:
            decoded = beam_search(model, ids, max_length, beam_size, length_penalty, **special)
        else:
            decoded = greedy_decode(model, ids, max_length, **special)
        out.extend(target_tokenizer.decode_batch(np.asarray(decoded)))
    return out


def make_translate_function(
    model, max_length, start_id=2, end_id=3, pad_id=0, beam_size=1, length_penalty=0.6, lean=False
):
    """Returns a `tf.function` (B, S) int32 source ids -> (B, max_length) int32 greedy ids
    (with `beam_size` > 1: the best beam-search hypothesis, as `beam_search` gives it; the
    beam loop converts to builtin TFLite ops just as well).

    Its input signature is `tf.TensorSpec((None, None), tf.int32, name="encoder_token_ids")`
    (any batch, any source length up to the model's `max_sequence_length`) and the cached
    greedy loop runs inside the graph, so it serves as a SavedModel signature and converts
    to TFLite with `supported_ops=[tf.lite.OpsSet.TFLITE_BUILTINS]` (no Flex or custom ops;
    the loop becomes a WHILE, the cache update a SCATTER_ND). Output format as in
    `greedy_decode`.

    Give the converter (or `tf.saved_model.save`) the `tf.Variable`s under the Keras
    variables to track, not the Keras model: with the model as `trackable_obj` the weights
    stay uninitialized resource variables in the .tflite file (NaN or a failed
    READ_VARIABLE inside the loop).

    Example:
    >>> translate = make_translate_function(model, max_length=16)
    >>> holder = tf.Module()
    >>> holder.weights = [weight.value for weight in model.weights]
    >>> converter = tf.lite.TFLiteConverter.from_concrete_functions(
    ...     [translate.get_concrete_function()], holder)
    >>> converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    >>> tflite_bytes = converter.convert()

    With `lean=True` the steps run through `tf_distill.decoding.lean` instead: the same
    decode up to float rounding, written with about half the TFLite ops per generated
    token (what the export uses, greedy and beam; a model it does not support, such as a
    mixed-precision one, falls back to the standard loop).
    """
    parts = [checks.check_model(model, max_length, start_id, end_id, pad_id)]
    use_lean = lean and lean_loop.supports_lean_loop(parts[0])
    checks.check_positive_int("beam_size", beam_size)
    alpha = float(length_penalty)

    @tf.function(input_signature=[tf.TensorSpec((None, None), tf.int32, "encoder_token_ids")])
    def translate(encoder_token_ids):
        if beam_size > 1:
            out = beam_loop(
                parts,
                encoder_token_ids,
                max_length,
                beam_size,
                alpha,
                start_id,
                end_id,
                pad_id,
                lean=use_lean,
            )
            return out[0] if isinstance(out, tuple) else out
        if use_lean:
            return lean_loop.lean_greedy_loop(
                parts[0], encoder_token_ids, max_length, start_id, end_id, pad_id
            )
        return greedy_loop(parts, encoder_token_ids, max_length, start_id, end_id, pad_id, True)

    return translate


def truncate_after_end(token_ids, end_id=3, pad_id=0):
    """Sets every id after the first `end_id` of each row to `pad_id` (the end id stays).

    Args:
        token_ids: (B, T) int ids.

    Returns:
        int32 tensor (B, T).
    """
    token_ids = tf.cast(token_ids, tf.int32)
    is_end = tf.cast(tf.equal(token_ids, end_id), tf.int32)
    after_end = tf.cumsum(is_end, axis=1, exclusive=True) > 0
    return tf.where(after_end, tf.constant(pad_id, tf.int32), token_ids)
