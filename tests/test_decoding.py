import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import random_token_ids
from tf_distill.decoding import (
    beam_search,
    greedy_decode,
    make_translate_function,
    seq2seq_parts,
    truncate_after_end,
)
from tf_distill.models import build_classifier, build_transformer
from tf_distill.tflite import loop_body_op_count, main_graph_op_count

START, END, PAD = 2, 3, 0
T = 10  # max_length used throughout, so each model traces each decoder once
TINY = dict(
    vocabulary_size=40,
    max_sequence_length=16,
    num_layers=2,
    num_heads=2,
    hidden_dim=16,
    intermediate_dim=32,
)


def perturbed(model, seed, scale=0.3):
    """Adds noise to every weight: a fresh model repeats one token; this one varies."""
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        weight.assign(weight.numpy() + rng.normal(0.0, scale, weight.shape).astype("float32"))
    return model


@pytest.fixture(scope="module")
def model():
    """Untied, learned positions, pre-norm, dropout on (decoding must switch it off).

    The end token's bias is raised so that some rows end early and others run to T.
    """
    # Seed 17: outputs that vary, some rows ending early at different steps (checked by
    # test_cached_and_uncached_greedy_agree); the weights depend on how many dropout
    # layers draw a seed, so a layer change can call for another one.
    keras.utils.set_random_seed(17)
    model = build_transformer(**TINY, dropout=0.1)
    perturbed(model, seed=1)
    bias = model.get_layer("output_projection").bias
    bias.assign(bias.numpy() + np.eye(40, dtype="float32")[END])
    return model


@pytest.fixture(scope="module")
def tied_model():
    """Tied output projection, post-norm, 1 encoder + 2 decoder layers.

    (Tied tiny models tend to repeat their last token; across rows the outputs still vary.)
    """
    keras.utils.set_random_seed(8)
    model = build_transformer(
        **dict(TINY, vocabulary_size=30, max_sequence_length=12, num_layers=1, dropout=0.0),
        num_decoder_layers=2,
        tie_embeddings=True,
        normalize_first=False,
    )
    return perturbed(model, seed=0)


@pytest.fixture(scope="module")
def models(model, tied_model):
    return {"untied": model, "tied": tied_model}


def sources(seed, vocabulary_size, batch=6, length=9):
    """Padded sources of different real lengths, at least one row with no padding."""
    ids = random_token_ids(np.random.default_rng(seed), batch, length, vocabulary_size, 2)
    ids[0] = np.random.default_rng(seed).integers(4, vocabulary_size, size=length)
    return ids


def log_softmax(logits):
    logits = logits - logits.max(-1, keepdims=True)
    return logits - np.log(np.exp(logits).sum(-1, keepdims=True))


def gnmt_scores(model, source, token_ids, length_penalty):
    """Scores of output-format sequences from one full forward pass, in NumPy."""
    token_ids = np.asarray(token_ids)
    batch, steps = token_ids.shape
    decoder_in = np.concatenate([np.full((batch, 1), START), token_ids[:, :-1]], axis=1)
    logits = model(
        {"encoder_token_ids": source, "decoder_token_ids": decoder_in.astype("int32")},
        training=False,
    ).numpy()
    logits[..., PAD] = -np.inf  # the decoders never generate pad
    log_p = np.take_along_axis(log_softmax(logits), token_ids[..., None], axis=-1)[..., 0]
    ended = np.cumsum(token_ids == END, axis=1) - (token_ids == END) > 0
    real = ~ended & (token_ids != PAD)
    lengths = real.sum(1)
    total = np.where(real, log_p, 0.0).sum(1)
    return total / ((5.0 + lengths) / 6.0) ** length_penalty


def assert_output_format(token_ids):
    """Each row: no pad before its first end token, only pads after it; no end: no pad."""
    for row in np.asarray(token_ids):
        ends = np.flatnonzero(row == END)
        stop = ends[0] + 1 if ends.size else len(row)
        assert (row[:stop] != PAD).all(), row
        assert (row[stop:] == PAD).all(), row


@pytest.mark.parametrize("which", ["untied", "tied"])
def test_cached_and_uncached_greedy_agree(models, which):
    model = models[which]
    vocabulary_size = model.get_layer("decoder_embedding").vocabulary_size
    source = sources(3, vocabulary_size)
    cached = greedy_decode(model, source, T)
    assert cached.dtype == tf.int32 and tuple(cached.shape) == (6, T)
    cached = cached.numpy()
    np.testing.assert_array_equal(greedy_decode(model, source, T, use_cache=False), cached)
    # The outputs are varied enough for the agreement to mean something.
    assert len(np.unique(cached[cached != PAD])) >= 5
    assert_output_format(cached)
    if which == "untied":
        ended = (cached == END).any(1)
        assert ended.any() and not ended.all()
        assert len({int(np.argmax(row == END)) for row in cached[ended]}) >= 2


@pytest.mark.parametrize("which", ["untied", "tied"])
def test_greedy_equals_step_by_step_model_calls(models, which):
    """Reference: call the functional model on the growing prefix, argmax in NumPy."""
    model = models[which]
    vocabulary_size = model.get_layer("decoder_embedding").vocabulary_size
    source = sources(4, vocabulary_size, batch=4)
    prefix = np.full((4, 1), START, "int32")
    for _ in range(T):
        logits = model(
            {"encoder_token_ids": source, "decoder_token_ids": prefix}, training=False
        ).numpy()[:, -1]
        logits[:, PAD] = -np.inf
        prefix = np.concatenate([prefix, logits.argmax(-1)[:, None].astype("int32")], axis=1)
    expected = truncate_after_end(prefix[:, 1:]).numpy()
    np.testing.assert_array_equal(greedy_decode(model, source, T), expected)


@pytest.mark.parametrize("use_cache", [True, False])
def test_each_row_decoded_alone_equals_its_row_in_the_batch(model, use_cache):
    source = sources(5, 40)
    batched = greedy_decode(model, source, T, use_cache=use_cache).numpy()
    for row, ids in enumerate(source):
        alone = ids[ids != PAD][None]  # its own length, no padding
        np.testing.assert_array_equal(
            greedy_decode(model, alone, T, use_cache=use_cache).numpy()[0], batched[row]
        )


def test_greedy_stops_when_every_row_has_ended_but_keeps_its_shape(model):
    bias = model.get_layer("output_projection").bias
    original = bias.numpy()
    try:
        bias.assign(original + 100.0 * np.eye(40, dtype="float32")[END])
        out = greedy_decode(model, sources(6, 40), T).numpy()
    finally:
        bias.assign(original)
    expected = np.zeros((6, T), "int32")
    expected[:, 0] = END
    np.testing.assert_array_equal(out, expected)


def test_truncate_after_end():
    ids = np.array([[5, 3, 7, 3, 9], [5, 6, 7, 8, 9], [3, 4, 4, 4, 4], [6, 6, 6, 6, 3]])
    expected = [[5, 3, 0, 0, 0], [5, 6, 7, 8, 9], [3, 0, 0, 0, 0], [6, 6, 6, 6, 3]]
    np.testing.assert_array_equal(truncate_after_end(ids), expected)
    np.testing.assert_array_equal(truncate_after_end(ids, end_id=6, pad_id=1)[1], [5, 6, 1, 1, 1])


@pytest.mark.parametrize("which", ["untied", "tied"])
def test_beam_search_with_beam_one_is_greedy(models, which):
    model = models[which]
    vocabulary_size = model.get_layer("decoder_embedding").vocabulary_size
    source = sources(7, vocabulary_size)
    ids, scores = beam_search(model, source, T, beam_size=1, return_scores=True)
    np.testing.assert_array_equal(ids, greedy_decode(model, source, T))
    np.testing.assert_allclose(scores, gnmt_scores(model, source, ids, 0.6), atol=1e-4)


def test_beam_search_scores_are_the_model_log_probabilities(model):
    source = sources(8, 40)
    ids, scores = beam_search(model, source, T, beam_size=4, length_penalty=0.6, return_scores=True)
    assert ids.dtype == tf.int32 and tuple(ids.shape) == (6, T)
    assert scores.dtype == tf.float32 and tuple(scores.shape) == (6,)
    assert_output_format(ids)
    np.testing.assert_allclose(scores, gnmt_scores(model, source, ids, 0.6), atol=1e-4)
    np.testing.assert_array_equal(beam_search(model, source, T, beam_size=4), ids)


@pytest.fixture(scope="module")
def small_vocabulary_model():
    keras.utils.set_random_seed(9)
    model = build_transformer(
        **dict(TINY, vocabulary_size=5, max_sequence_length=4, num_layers=1, dropout=0.0)
    )
    return perturbed(model, seed=2, scale=0.5)


@pytest.mark.parametrize("length_penalty", [0.0, 1.0])
def test_wide_beam_search_finds_the_best_sequence(small_vocabulary_model, length_penalty):
    """With vocabulary {pad, 1, start, end, 4} and 3 steps there are 40 sequences: a beam of
    40 keeps them all, so beam search must return the best one, which scores at least as
    well as greedy's. Reference: score all 40 with full forward passes in NumPy."""
    model, steps = small_vocabulary_model, 3
    tokens, non_end = [1, 2, 3, 4], [1, 2, 4]
    candidates = []
    for length in range(1, steps + 1):
        last = tokens if length == steps else [END]
        for body in itertools.product(non_end, repeat=length - 1):
            for final in last:
                candidates.append(list(body) + [final] + [PAD] * (steps - length))
    candidates = np.array(candidates, "int32")
    assert len(candidates) == 40
    source = np.array([[4, 1, 4, 0], [1, 1, 0, 0], [4, 4, 1, 2]], "int32")

    ids, scores = beam_search(
        model, source, steps, beam_size=40, length_penalty=length_penalty, return_scores=True
    )
    greedy = greedy_decode(model, source, steps)
    greedy_scores = gnmt_scores(model, source, greedy, length_penalty)
    for row in range(len(source)):
        every = gnmt_scores(
            model, np.repeat(source[row : row + 1], 40, axis=0), candidates, length_penalty
        )
        best = int(np.argmax(every))
        np.testing.assert_array_equal(ids[row], candidates[best])
        np.testing.assert_allclose(scores[row], every[best], atol=1e-4)
        assert scores[row] >= greedy_scores[row] - 1e-5


def tflite_ops(flatbuffer):
    """(builtin op names, custom op names) of every operator code in all subgraphs."""
    from tensorflow.lite.python import schema_py_generated as schema

    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    tflite_model = schema.Model.GetRootAsModel(flatbuffer, 0)
    builtins, customs = set(), set()
    for i in range(tflite_model.OperatorCodesLength()):
        code = tflite_model.OperatorCodes(i)
        if code.CustomCode():  # Flex ops are custom ops named "Flex<TF op>"
            customs.add(code.CustomCode().decode())
        else:
            builtins.add(names[max(code.BuiltinCode(), code.DeprecatedBuiltinCode())])
    return builtins, customs


def test_translate_function_converts_to_builtin_tflite_and_matches_keras(model):
    from ai_edge_litert.interpreter import Interpreter

    translate = make_translate_function(model, T)
    (spec,) = translate.input_signature
    assert spec.shape.as_list() == [None, None] and spec.dtype == tf.int32
    # Track the tf.Variables under the Keras variables: a Keras model or its Keras variables
    # as `trackable_obj` leave the weights uninitialized in the .tflite file.
    holder = tf.Module()
    holder.weights = [weight.value for weight in model.weights]
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [translate.get_concrete_function()], holder
    )
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    flatbuffer = converter.convert()
    builtins, customs = tflite_ops(flatbuffer)
    assert not customs and "CUSTOM" not in builtins, customs
    # The decode loop, the argmax and the key/value cache update are all builtin kernels.
    assert {"WHILE", "ARG_MAX", "SCATTER_ND"} <= builtins, builtins

    runner = Interpreter(model_content=flatbuffer).get_signature_runner()
    for source in (sources(10, 40), sources(11, 40, batch=2, length=5)):
        (got,) = runner(encoder_token_ids=source).values()
        np.testing.assert_array_equal(got, greedy_decode(model, source, T))


def test_translate_function_as_a_saved_model_signature(model, tmp_path):
    holder = tf.Module()
    holder.weights = [weight.value for weight in model.weights]
    holder.translate = make_translate_function(model, T)
    tf.saved_model.save(holder, str(tmp_path), signatures={"translate": holder.translate})
    signature = tf.saved_model.load(str(tmp_path)).signatures["translate"]
    source = sources(12, 40)
    (got,) = signature(encoder_token_ids=tf.constant(source)).values()
    np.testing.assert_array_equal(got, greedy_decode(model, source, T))


def test_seq2seq_parts(model, tied_model):
    parts = seq2seq_parts(model)
    assert parts.decoder is model.get_layer("decoder")
    assert parts.output_projection is model.get_layer("output_projection")
    assert seq2seq_parts(tied_model).output_projection is None


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda m, s: greedy_decode(m, s, 0), "`max_length` must be a positive integer"),
        (lambda m, s: greedy_decode(m, s, -3), "`max_length` must be a positive integer"),
        (lambda m, s: greedy_decode(m, s, 2.5), "`max_length` must be a positive integer"),
        (lambda m, s: greedy_decode(m, s, 17), r"at most the model's `max_sequence_length` \(16\)"),
        (lambda m, s: beam_search(m, s, T, beam_size=0), "`beam_size` must be a positive"),
        (lambda m, s: beam_search(m, s, 0), "`max_length` must be a positive integer"),
        (lambda m, s: beam_search(m, s, T, length_penalty=-1), "`length_penalty` must be"),
        (lambda m, s: greedy_decode(m, s[0], T), r"shape \(batch, length\).*shape=\(9,\)"),
        (lambda m, s: beam_search(m, s[None], T), r"shape \(batch, length\).*shape=\(1, 6, 9\)"),
        (lambda m, s: greedy_decode(m, s * 1.0, T), "must hold integer ids"),
        (lambda m, s: greedy_decode(m, np.ones((2, 17), "int32"), T), "at most 16 tokens"),
        (lambda m, s: greedy_decode(m, s, T, start_id=3), "must differ"),
        (lambda m, s: greedy_decode(m, s, T, end_id=40), r"`end_id` must be a token id in \[0"),
        (lambda m, s: greedy_decode(m, s, T, pad_id=1, start_id=4), "model's pad id"),
        (lambda m, s: make_translate_function(m, 0), "`max_length` must be a positive"),
    ],
)
def test_bad_arguments(model, call, match):
    with pytest.raises(ValueError, match=match):
        call(model, sources(13, 40))


@pytest.mark.parametrize(
    "build",
    [
        lambda: keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]),
        lambda: build_classifier(
            20, 3, 8, num_layers=1, num_heads=2, hidden_dim=8, intermediate_dim=8
        ),
        lambda: "not a model",
    ],
)
def test_models_not_built_by_build_transformer_are_rejected(build):
    with pytest.raises(ValueError, match="built by `tf_distill.build_transformer`.*no layer"):
        greedy_decode(build(), [[5, 6]], 4)


@pytest.fixture(scope="module")
def second_model():
    """Another model of the `model` fixture's vocabulary, for ensembles."""
    keras.utils.set_random_seed(23)
    return perturbed(build_transformer(**TINY, dropout=0.0), seed=5)


def ensemble_log_probs(members, source, prefix):
    """log mean_i softmax(z_i) at the prefix's last position, from full model calls, with
    the pad token's share removed and the rest renormalized (pad is never generated)."""
    probs = []
    for member in members:
        logits = member(
            {"encoder_token_ids": source, "decoder_token_ids": prefix}, training=False
        ).numpy()[:, -1]
        probs.append(np.exp(log_softmax(logits)))
    mean = np.mean(probs, axis=0)
    mean[:, PAD] = 0.0
    with np.errstate(divide="ignore"):
        return np.log(mean / mean.sum(-1, keepdims=True))


def test_ensemble_greedy_equals_step_by_step_mean_of_probabilities(model, second_model):
    source = sources(11, 40, batch=5)
    prefix = np.full((5, 1), START, "int32")
    for _ in range(T):
        step = ensemble_log_probs([model, second_model], source, prefix)
        prefix = np.concatenate([prefix, step.argmax(-1)[:, None].astype("int32")], axis=1)
    expected = truncate_after_end(prefix[:, 1:]).numpy()
    got = greedy_decode([model, second_model], source, T).numpy()
    np.testing.assert_array_equal(got, expected)
    # The ensemble decodes differently from either member alone on some row.
    assert (got != greedy_decode(model, source, T).numpy()).any()
    assert (got != greedy_decode(second_model, source, T).numpy()).any()
    np.testing.assert_array_equal(
        greedy_decode([model, second_model], source, T, use_cache=False), got
    )
    # A one-member list is the model itself.
    np.testing.assert_array_equal(
        greedy_decode([model], source, T), greedy_decode(model, source, T)
    )


def test_ensemble_beam_scores_are_the_ensemble_log_probabilities(model, second_model):
    source = sources(12, 40, batch=4)
    members = [model, second_model]
    ids, scores = beam_search(members, source, T, beam_size=3, return_scores=True)
    ids = ids.numpy()
    assert_output_format(ids)
    # Reference score: sum of the ensemble's log mean probability along each output.
    decoder_in = np.concatenate([np.full((4, 1), START), ids[:, :-1]], axis=1).astype("int32")
    totals, lengths = np.zeros(4), np.zeros(4)
    for position in range(T):
        step = ensemble_log_probs(members, source, decoder_in[:, : position + 1])
        token = ids[:, position]
        ended_before = (ids[:, :position] == END).any(1)
        real = ~ended_before & (token != PAD)
        totals += np.where(real, step[np.arange(4), token], 0.0)
        lengths += real
    np.testing.assert_allclose(scores, totals / ((5.0 + lengths) / 6.0) ** 0.6, atol=1e-4)
    greedy = greedy_decode(members, source, T).numpy()
    np.testing.assert_array_equal(beam_search(members, source, T, beam_size=1), greedy)


def test_ensemble_of_different_vocabularies_is_rejected(model, tied_model):
    with pytest.raises(ValueError, match="share one target vocabulary"):
        greedy_decode([model, tied_model], sources(1, 30), T)


def test_translate_texts_equals_decoding_each_sentence_alone(model):
    """Strings in, strings out: tokenized, cut to the encoder's length (with a warning),
    batched, decoded greedily or with beam search, detokenized."""
    from tf_distill import TFDistillWarning, translate_texts
    from tf_distill.data import Tokenizer

    words = ["cat", "dog", "sees", "the", "a", "black", "white", "sleeps", "and", "small"]
    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(words, size=n)) for n in (2, 5, 3, 7, 1, 4, 6)]
    tokenizer = Tokenizer.train(texts * 3, vocabulary_size=TINY["vocabulary_size"])
    assert tokenizer.vocabulary_size <= TINY["vocabulary_size"]
    ids = tokenizer.encode_batch(texts)
    width = max(len(row) for row in tokenizer.tokenize(texts))
    assert ids.dtype == np.int32 and ids.shape == (len(texts), width)
    assert [list(r[r != PAD]) for r in ids] == tokenizer.tokenize(texts)
    assert tokenizer.encode_batch(texts, max_length=3).shape == (len(texts), 3)
    assert tokenizer.decode_batch(ids) == tokenizer.detokenize([list(r) for r in ids])
    assert tokenizer.special_ids == {"start_id": START, "end_id": END, "pad_id": PAD}
    for beam in (1, 3):
        got = translate_texts(model, texts, tokenizer, max_length=T, beam_size=beam, batch_size=3)
        for text, out in zip(texts, got, strict=True):
            one = np.array([tokenizer.tokenize(text)], np.int32)
            if beam == 1:
                expected = greedy_decode(model, one, T, START, END, PAD)
            else:
                expected = beam_search(model, one, T, 3, 0.6, START, END, PAD)
            assert out == tokenizer.detokenize(np.asarray(expected))[0]
    overlong = " ".join(["cat"] * 40)  # more than 16 tokens however "cat" is cut
    with pytest.warns(TFDistillWarning, match="1 of 2 sentences are longer than the model's 16"):
        cut = translate_texts(model, [overlong, texts[0]], tokenizer, max_length=T)
    first_16 = np.array([tokenizer.tokenize(overlong)[:16]], np.int32)
    expected = greedy_decode(model, first_16, T, START, END, PAD)
    assert cut[0] == tokenizer.detokenize(np.asarray(expected))[0]


def _tflite_translate(model, lean):
    holder = tf.Module()
    holder.weights = [weight.value for weight in model.weights]
    translate = make_translate_function(model, T, lean=lean)
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [translate.get_concrete_function()], holder
    )
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    return translate, converter.convert()


@pytest.mark.parametrize("which", ["untied", "tied"])
def test_lean_translate_equals_greedy_decode(models, which):
    """The lean loop (tf_distill.decoding.lean) against the Keras decode: pre-norm with
    learned positions and an untied projection, post-norm with a tied one and 2 decoder
    layers; padded rows, rows that end early, and a row that is all padding."""
    model = models[which]
    vocabulary = model.get_layer("decoder_embedding").vocabulary_size
    translate = make_translate_function(model, T, lean=True)
    for source in (sources(20, vocabulary), sources(21, vocabulary, batch=3, length=4)):
        source[-1] = PAD
        np.testing.assert_array_equal(translate(source).numpy(), greedy_decode(model, source, T))


def test_lean_translate_converts_to_builtin_tflite_with_half_the_loop_ops(model):
    from ai_edge_litert.interpreter import Interpreter

    _, standard = _tflite_translate(model, lean=False)
    _, lean = _tflite_translate(model, lean=True)
    builtins, customs = tflite_ops(lean)
    assert not customs and "CUSTOM" not in builtins, customs
    # The caches are written in place, not by transposes around a scatter.
    assert "WHILE" in builtins and "SCATTER_ND" not in builtins
    assert "DYNAMIC_UPDATE_SLICE" in builtins
    # 2 decoder layers: the standard body has 325 ops here, the lean one 131.
    assert loop_body_op_count(lean) < 0.5 * loop_body_op_count(standard)
    # The lean encoder: 2 layers in 132 ops of the main graph instead of 231.
    print(
        "OPS",
        loop_body_op_count(lean),
        loop_body_op_count(standard),
        main_graph_op_count(lean),
        main_graph_op_count(standard),
    )
    assert main_graph_op_count(lean) < 0.7 * main_graph_op_count(standard)
    runner = Interpreter(model_content=lean).get_signature_runner()
    for source in (sources(22, 40), sources(23, 40, batch=2, length=5)):
        (got,) = runner(encoder_token_ids=source).values()
        np.testing.assert_array_equal(got, greedy_decode(model, source, T))


@pytest.mark.parametrize("which", ["untied", "tied"])
def test_lean_encoder_equals_the_keras_encoder(models, which):
    """`lean.encode` (rows of (B * S, D)) against the Keras encoder (`steps.encode`), on
    pre-norm and post-norm models, with padded rows; a row of pads only is left out (its
    output is unused: the decoder attends to nothing there either way)."""
    from tf_distill.decoding import lean, steps

    parts = seq2seq_parts(models[which])
    vocabulary = parts.encoder_embedding.vocabulary_size
    source = tf.constant(sources(26, vocabulary, batch=3, length=7))
    rows, mask, shape = lean.encode(parts, source)
    expected, expected_mask = steps.encode(parts, source)
    np.testing.assert_array_equal(shape.numpy(), [3, 7])
    np.testing.assert_array_equal(mask.numpy(), expected_mask.numpy())
    assert mask.numpy().sum(axis=1).min() < 7  # some padding in the batch
    got = tf.reshape(rows, (3, 7, -1)).numpy()
    np.testing.assert_allclose(got, expected.numpy(), rtol=1e-5, atol=1e-5)


def test_lean_translate_falls_back_for_a_mixed_precision_model():
    from tf_distill.decoding import lean

    keras.utils.set_random_seed(3)
    mixed = build_transformer(**TINY, dtype="mixed_bfloat16")
    assert not lean.supports_lean_loop(seq2seq_parts(mixed))
    assert lean.supports_lean_loop(seq2seq_parts(build_transformer(**TINY)))
    source = sources(24, 40)
    got = make_translate_function(mixed, T, lean=True)(source).numpy()
    np.testing.assert_array_equal(got, greedy_decode(mixed, source, T))


@pytest.mark.parametrize("which", ["untied", "tied"])
def test_lean_beam_translate_equals_beam_search(models, which):
    """The beam loop with the lean steps gives the Keras beam search's hypotheses."""
    model = models[which]
    vocabulary = model.get_layer("decoder_embedding").vocabulary_size
    translate = make_translate_function(model, T, beam_size=3, length_penalty=0.6, lean=True)
    source = sources(25, vocabulary)
    source[-1] = PAD
    expected = beam_search(model, source, T, 3, 0.6)
    np.testing.assert_array_equal(translate(source).numpy(), expected)
