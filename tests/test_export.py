"""`export_student` and the translate client on a tiny model (the pipeline test covers a run).

One module-scoped export (SavedModel and the three TFLite files) serves every test that reads
artifacts; the failure tests patch one step of a second, smaller export.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

import tf_distill.export as export_lib
from tests.helpers import perturb_weights
from tf_distill.data import Tokenizer
from tf_distill.decoding import greedy_decode
from tf_distill.export import ExportError, export_student, tflite_op_names, tflite_runner
from tf_distill.models import build_transformer
from tf_distill.translate import Translator

ROOT = Path(__file__).resolve().parent.parent
SPECIAL = {"start_id": 2, "end_id": 3, "pad_id": 0}
MAX_SEQUENCE_LENGTH = 16
MAX_LENGTH = 12  # target tokens `translate` produces
SENTENCES = [
    "the cat is black",
    "the dog is white",
    "a small cat sees the dog",
    "the black dog sleeps",
    "I see a white cat",
    "the dog and the cat",
]
TFLITE_FILES = ("student_fp32.tflite", "student_fp16.tflite", "student_int8.tflite")


def _source_ids(tokenizer, sentences):
    rows = tokenizer.tokenize(sentences)
    width = max(len(row) for row in rows)
    return np.array([row + [0] * (width - len(row)) for row in rows], np.int32)


@pytest.fixture(scope="module")
def tokenizer():
    return Tokenizer.train(SENTENCES, vocabulary_size=40)


@pytest.fixture(scope="module")
def model(tokenizer):
    """Random weights plus noise (a fresh model repeats one token; this one varies), with
    the end token's bias raised so that some rows stop early and others run to the end."""
    keras.utils.set_random_seed(3)
    model = build_transformer(
        vocabulary_size=tokenizer.vocabulary_size,
        max_sequence_length=MAX_SEQUENCE_LENGTH,
        num_layers=1,
        num_heads=2,
        hidden_dim=16,
        intermediate_dim=32,
        dropout=0.0,
    )
    perturb_weights(model, 0.3, seed=0)
    bias = model.get_layer("output_projection").bias
    bias.assign(bias.numpy() + 2.0 * np.eye(tokenizer.vocabulary_size, dtype="float32")[3])
    return model


@pytest.fixture(scope="module")
def exported(tmp_path_factory, model, tokenizer):
    out = tmp_path_factory.mktemp("export_run")
    tokenizer.save(out / "tokenizer", "source")
    tokenizer.save(out / "tokenizer", "target")
    metadata = export_student(
        model,
        out,
        _source_ids(tokenizer, SENTENCES),
        MAX_LENGTH,
        special=SPECIAL,
        tokenizer_dir=out / "tokenizer",
        # Random weights: fp16 / int8 quality is not the point here (fp32 must still be exact).
        min_sequence_agreement=0.0,
        extra_metadata={"run": "test"},
        detokenize=tokenizer.detokenize,
        source_texts=SENTENCES,
    )
    return out, metadata


def test_export_writes_every_artifact(exported):
    out, metadata = exported
    export = out / "export"
    assert not (out / "export.tmp").exists()
    for name in ("student.keras", *TFLITE_FILES, "export.json"):
        assert (export / name).stat().st_size > 0, name
    assert (export / "saved_model" / "saved_model.pb").is_file()
    for prefix in ("source", "target"):
        assert (export / "tokenizer" / f"{prefix}_vocab.txt").is_file()
    on_disk = json.loads((export / "export.json").read_text())
    assert on_disk == json.loads(json.dumps(metadata))
    assert on_disk["run"] == "test"
    assert on_disk["special_token_ids"] == SPECIAL
    assert on_disk["max_decode_length"] == MAX_LENGTH
    assert on_disk["max_sequence_length"] == MAX_SEQUENCE_LENGTH
    assert set(on_disk["parity"]) == {"saved_model", "tflite_fp32", "tflite_fp16", "tflite_int8"}
    assert on_disk["parity"]["saved_model"]["sequence_agreement"] == 1.0
    assert on_disk["parity"]["tflite_fp32"]["sequence_agreement"] == 1.0
    assert on_disk["parity"]["saved_model"]["max_abs_logit_diff"] < 1e-4
    for variant, entry in on_disk["files"].items():
        assert entry["bytes"] > 0, variant


def test_saved_model_signatures_match_keras(exported, model, tokenizer):
    out, _ = exported
    loaded = tf.saved_model.load(str(out / "export" / "saved_model"))
    assert set(loaded.signatures) == {"translate", "forward"}
    source = _source_ids(tokenizer, SENTENCES)
    expected = greedy_decode(model, source, MAX_LENGTH, **SPECIAL).numpy()
    got = loaded.signatures["translate"](encoder_token_ids=tf.constant(source))
    np.testing.assert_array_equal(got["output_token_ids"].numpy(), expected)
    assert len(np.unique(expected, axis=0)) > 1  # the outputs vary: the check means something

    decoder = np.concatenate([np.full((len(source), 1), 2, np.int32), expected[:, :-1]], 1)
    keras_logits = model({"encoder_token_ids": source, "decoder_token_ids": decoder})
    sm_logits = loaded.signatures["forward"](
        encoder_token_ids=tf.constant(source), decoder_token_ids=tf.constant(decoder)
    )["logits"]
    np.testing.assert_allclose(sm_logits.numpy(), np.asarray(keras_logits), atol=1e-4)


@pytest.mark.parametrize("filename", TFLITE_FILES)
def test_tflite_builtin_ops_only_with_while_loop(exported, filename):
    out, _ = exported
    ops = tflite_op_names((out / "export" / filename).read_bytes())
    assert "WHILE" in ops  # the decode loop is inside the model
    assert not [op for op in ops if op.startswith("Flex") or op == "CUSTOM"], ops
    assert set(ops) <= export_lib.builtin_names()


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("length", [4, 9])
def test_tflite_dynamic_batch_and_source_length(exported, model, tokenizer, batch, length):
    out, _ = exported
    run = tflite_runner(out / "export" / "student_fp32.tflite")
    rng = np.random.default_rng(batch * 100 + length)
    source = rng.integers(4, tokenizer.vocabulary_size, (batch, length)).astype(np.int32)
    if batch > 1:
        source[1, length // 2 :] = 0  # a padded row beside full ones
    got = run(source)
    assert got.shape == (batch, MAX_LENGTH) and got.dtype == np.int32
    np.testing.assert_array_equal(got, greedy_decode(model, source, MAX_LENGTH, **SPECIAL))


def _small_export(model, tokenizer, out, **kwargs):
    return export_student(
        model,
        out,
        _source_ids(tokenizer, SENTENCES[:2]),
        MAX_LENGTH,
        special=SPECIAL,
        **kwargs,
    )


def _previous_export(exported, tmp_path):
    """A run directory holding a copy of a good export, and a snapshot of its files."""
    shutil.copytree(exported[0] / "export", tmp_path / "export")
    snapshot = {
        str(p.relative_to(tmp_path)): p.read_bytes()
        for p in (tmp_path / "export").rglob("*")
        if p.is_file()
    }
    return snapshot


def _assert_untouched(tmp_path, snapshot):
    assert not (tmp_path / "export.tmp").exists()
    now = {
        str(p.relative_to(tmp_path)): p.read_bytes()
        for p in (tmp_path / "export").rglob("*")
        if p.is_file()
    }
    assert now == snapshot


def test_failed_export_leaves_nothing_behind(model, tokenizer, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("converter crashed")

    monkeypatch.setattr(export_lib.tflite_files, "convert_tflite", broken)
    fresh = tmp_path / "fresh"
    with pytest.raises(RuntimeError, match="converter crashed"):
        _small_export(model, tokenizer, fresh, formats=("tflite_fp32",))
    assert not (fresh / "export").exists() and not (fresh / "export.tmp").exists()


def test_failed_export_keeps_previous_export(exported, model, tokenizer, tmp_path, monkeypatch):
    snapshot = _previous_export(exported, tmp_path)
    monkeypatch.setattr(
        export_lib.tflite_files,
        "convert_tflite",
        lambda *a, **k: (_ for _ in ()).throw(OSError("disk full")),
    )
    with pytest.raises(OSError, match="disk full"):
        _small_export(model, tokenizer, tmp_path, formats=("saved_model", "tflite_int8"))
    _assert_untouched(tmp_path, snapshot)


def test_low_quantized_parity_is_an_export_error(exported, model, tokenizer, tmp_path, monkeypatch):
    snapshot = _previous_export(exported, tmp_path)
    real = export_lib.student.sequence_parity
    calls = []

    def int8_disagrees(reference, candidate):
        calls.append(1)
        # The first comparison is the SavedModel's; the int8 file's is the second. Flip the
        # first int8 row, so one sentence of two (50%) decodes differently from Keras.
        if len(calls) == 2:
            candidate = candidate.copy()
            candidate[0] = reference[0] + 1
        return real(reference, candidate)

    monkeypatch.setattr(export_lib.student, "sequence_parity", int8_disagrees)
    with pytest.raises(ExportError, match=r"tflite_int8 parity too low: 50\.0%.*need 97%"):
        _small_export(model, tokenizer, tmp_path, formats=("saved_model", "tflite_int8"))
    _assert_untouched(tmp_path, snapshot)


# The translate client. ------------------------------------------------------------------


def translate_cli(*args, stdin=""):
    return subprocess.run(
        [sys.executable, "-m", "tf_distill", "translate", *args],
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""},
    )


def _one_line_error(result):
    assert result.returncode == 2, result.stderr[-2000:]
    # TensorFlow's C++ start-up may log to stderr before Python runs; ours is one line.
    lines = [line for line in result.stderr.splitlines() if line.startswith("tf-distill:")]
    assert len(lines) == 1 and lines[0].startswith("tf-distill: error:"), result.stderr
    assert result.stderr.strip().endswith(lines[0])
    assert "Traceback" not in result.stderr
    return lines[0]


def test_translate_cli_model_dir_without_export(tmp_path):
    line = _one_line_error(translate_cli("--model", str(tmp_path), "the cat"))
    assert "holds no export" in line


def test_translate_cli_corrupt_tflite(exported, tmp_path):
    shutil.copytree(exported[0] / "export", tmp_path / "export")
    path = tmp_path / "export" / "student_int8.tflite"
    path.write_bytes(path.read_bytes()[:200])
    line = _one_line_error(
        translate_cli("--model", str(tmp_path), "--format", "tflite-int8", "the cat")
    )
    assert "student_int8.tflite could not be loaded" in line and "Re-run the export" in line


def test_translate_cli_unknown_format_rejected(exported):
    result = translate_cli("--model", str(exported[0]), "--format", "onnx", "the cat")
    assert result.returncode == 2
    assert "invalid choice: 'onnx'" in result.stderr


def test_translate_cli_keeps_empty_lines(exported):
    result = translate_cli(
        "--model", str(exported[0]), "--format", "tflite-fp32", stdin="the cat\n\nthe dog\n"
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.split("\n")
    assert len(lines) == 4 and lines[1] == "" and lines[3] == "", result.stdout


def test_translator_truncates_overlong_input(exported, tokenizer, capsys):
    translator = Translator(exported[0], "tflite-fp32")
    sentence = " ".join(["the black cat sees the white dog"] * 4)
    assert len(tokenizer.tokenize(sentence)) > translator.max_length
    text = translator.translate(sentence)
    assert isinstance(text, str)
    captured = capsys.readouterr()
    assert "warning: input longer than 15 tokens was truncated" in captured.err
    ids, truncated = translator.encode(sentence)
    assert truncated and ids.shape == (1, 15)


def test_full_int8_translate_converts_with_calibration(model, tokenizer, tmp_path):
    """The decode loop (5-D caches) runs in the int8 calibrator; activations become int8."""
    metadata = _small_export(
        model,
        tokenizer,
        tmp_path,
        formats=("tflite_int8",),
        min_sequence_agreement=0.0,  # random weights: quality is not the point here
        int8_mode="full",
    )
    assert metadata["int8_mode"] == "full"
    ops = metadata["files"]["tflite_int8"]["ops"]
    assert {"WHILE", "QUANTIZE", "DEQUANTIZE"} <= set(ops)
    assert set(ops) <= export_lib.builtin_names()
    run = tflite_runner(tmp_path / "export" / "student_int8.tflite")
    got = run(_source_ids(tokenizer, SENTENCES[:2]))
    assert got.shape == (2, MAX_LENGTH) and got.dtype == np.int32


def test_seq2seq_export_needs_max_length(model, tokenizer, tmp_path):
    with pytest.raises(ValueError, match="`max_length` is required"):
        export_student(model, tmp_path, _source_ids(tokenizer, SENTENCES[:2]))
    assert not (tmp_path / "export.tmp").exists() and not (tmp_path / "export").exists()


def test_int8_stores_a_tied_embedding_once_and_strips_names(tmp_path):
    """Per-tensor int8 weights let the decoder's lookup and its tied logits share one table;
    internal tensor names are dropped, the signature's input and output keep theirs."""
    from tensorflow.lite.tools import flatbuffer_utils

    vocabulary, width = 300, 32  # >= 1024 elements: the converter quantizes the table
    keras.utils.set_random_seed(5)
    tied = build_transformer(
        vocabulary_size=vocabulary,
        max_sequence_length=MAX_SEQUENCE_LENGTH,
        num_layers=1,
        num_heads=2,
        hidden_dim=width,
        intermediate_dim=64,
        dropout=0.0,
        tie_embeddings=True,
    )
    perturb_weights(tied, 0.3, seed=1)
    source = np.random.default_rng(0).integers(4, vocabulary, (3, 7)).astype(np.int32)
    export_student(
        tied,
        tmp_path,
        source,
        MAX_LENGTH,
        formats=("tflite_fp32", "tflite_int8"),
        special=SPECIAL,
        min_sequence_agreement=0.0,
    )
    for filename, dtype in (("student_fp32.tflite", 0), ("student_int8.tflite", 9)):
        model = flatbuffer_utils.read_model(str(tmp_path / "export" / filename))
        tables = {
            tensor.buffer
            for subgraph in model.subgraphs
            for tensor in subgraph.tensors
            if list(tensor.shape) == [vocabulary, width] and tensor.type == dtype
        }
        # The encoder's embedding and the decoder's (lookup and logits alike).
        assert len(tables) == 2, (filename, tables)
        names = {tensor.name for subgraph in model.subgraphs for tensor in subgraph.tensors} - {b""}
        assert names == {b"translate_encoder_token_ids:0", b"StatefulPartitionedCall_1:0"}, names
    run = tflite_runner(tmp_path / "export" / "student_int8.tflite")
    assert run(source).shape == (3, MAX_LENGTH)


@pytest.mark.parametrize("source_ids", [np.zeros((0, 5), np.int32), np.zeros(5, np.int32)])
def test_export_needs_test_inputs(model, tmp_path, source_ids):
    with pytest.raises(ValueError, match=r"`source_ids` must be a non-empty \(N, S\) array"):
        export_student(model, tmp_path, source_ids, MAX_LENGTH, special=SPECIAL)
    assert not (tmp_path / "export.tmp").exists() and not (tmp_path / "export").exists()


def test_full_int8_without_calibration_inputs_is_refused(tmp_path):
    from tf_distill.tflite import convert_tflite

    # Refused before the SavedModel is even read.
    with pytest.raises(ValueError, match="at least one calibration input"):
        convert_tflite(tmp_path / "missing", "tflite_int8", calibration_inputs=[])


def _int8_tensors_matching(path, weights):
    """For each int8 tensor in a TFLite file, dequantized: the indices of `weights` holding
    exactly its values (in any layout)."""
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model(str(path))
    sorted_weights = {i: np.sort(w.ravel()) for i, w in weights.items()}
    found = []
    for subgraph in model.subgraphs:
        for tensor in subgraph.tensors:
            data = model.buffers[tensor.buffer].data
            if tensor.type != 9 or data is None or tensor.quantization is None:
                continue  # 9: INT8
            q = np.frombuffer(bytes(bytearray(data)), np.int8).astype(np.float64)
            stored = np.sort(q * tensor.quantization.scale[0])
            found.append(
                {
                    i
                    for i, values in sorted_weights.items()
                    if values.size == stored.size
                    and np.allclose(values, stored, rtol=1e-5, atol=1e-7)
                }
            )
    return found


def test_int8_grid_rounding_makes_the_int8_file_store_the_keras_weights(tmp_path):
    """After `round_to_int8_grid` every int8 tensor of the dynamic-range file, dequantized,
    is one of the Keras model's weights exactly; before it, none is."""
    from tf_distill.tflite import round_to_int8_grid

    keras.utils.set_random_seed(6)
    student = build_transformer(300, MAX_SEQUENCE_LENGTH, 1, 2, 32, 64, dropout=0.0)
    perturb_weights(student, 0.3, seed=2)
    source = np.random.default_rng(0).integers(4, 300, (3, 7)).astype(np.int32)

    def export_int8(directory):
        export_student(
            student, directory, source, MAX_LENGTH, formats=("tflite_int8",), special=SPECIAL,
            min_sequence_agreement=0.0,
        )  # fmt: skip
        return directory / "export" / "student_int8.tflite"

    before = [w.copy() for w in student.get_weights()]
    big = {i: w for i, w in enumerate(before) if w.ndim >= 2 and w.size >= 1024}
    unrounded = _int8_tensors_matching(export_int8(tmp_path / "a"), big)
    assert unrounded and not any(unrounded)  # plain int8 rounding changes every tensor

    assert round_to_int8_grid(student) == len(big)
    rounded = student.get_weights()
    for i, (old, new) in enumerate(zip(before, rounded, strict=True)):
        if i not in big:
            np.testing.assert_array_equal(new, old)  # biases, norms, small tables stay
            continue
        scale = np.abs(old).max() / 127
        steps = new / scale
        np.testing.assert_allclose(steps, np.round(steps), atol=1e-3)
        assert len(np.unique(np.round(steps))) <= 255 and np.abs(new - old).max() <= scale / 2
    round_to_int8_grid(student)  # idempotent
    for again, new in zip(student.get_weights(), rounded, strict=True):
        np.testing.assert_allclose(again, new, rtol=0, atol=1e-7)
    matches = _int8_tensors_matching(export_int8(tmp_path / "b"), {i: rounded[i] for i in big})
    assert matches and all(matches)
    assert set().union(*matches) == set(big)  # every rounded Keras weight is in the file


def test_quantized_files_are_judged_by_bleu_when_references_are_given(
    model, tokenizer, tmp_path, monkeypatch
):
    """With references, an int8 file that decodes one sentence of two differently passes as
    long as its BLEU stays within max_bleu_drop of the Keras model's, and fails beyond it."""
    real = export_lib.student.sequence_parity
    calls = []

    def int8_disagrees(reference, candidate):
        calls.append(1)
        return real(reference, candidate)

    source_ids = _source_ids(tokenizer, SENTENCES[:2])
    keras_ids = np.asarray(greedy_decode(model, source_ids, MAX_LENGTH, **SPECIAL))

    # Every id as a word, so that each output has n-grams to score; the references are the
    # Keras outputs themselves (BLEU 100), so any change costs BLEU.
    def detokenize(ids):
        return [" ".join(f"w{i}" for i in row if i != 0) for row in np.asarray(ids)]

    references = detokenize(keras_ids)
    flipped = {"done": False}
    real_decode = export_lib.tflite_files.decode_rows

    def decode_with_int8_flip(fn, rows):
        got = real_decode(fn, rows)
        if len(calls) == 1 and not flipped["done"]:  # after the SavedModel: the int8 file
            flipped["done"] = True
            got = got.copy()
            got[0] = np.where(got[0] == SPECIAL["end_id"], got[0], 5)
        return got

    monkeypatch.setattr(export_lib.student, "sequence_parity", int8_disagrees)
    monkeypatch.setattr(export_lib.tflite_files, "decode_rows", decode_with_int8_flip)
    kwargs = dict(formats=("saved_model", "tflite_int8"), references=references)
    kwargs["detokenize"] = detokenize
    meta = _small_export(model, tokenizer, tmp_path / "lenient", max_bleu_drop=100.0, **kwargs)
    parity = meta["parity"]["tflite_int8"]
    assert parity["sequence_agreement"] == 0.5
    assert parity["keras_bleu"] == pytest.approx(100.0)
    assert parity["bleu_drop"] == pytest.approx(100.0 - parity["bleu"]) and parity["bleu_drop"] > 0
    assert "_outputs" not in meta
    stored = json.loads((tmp_path / "lenient" / "export" / "export.json").read_text())
    assert stored["parity"]["tflite_int8"]["max_bleu_drop"] == 100.0
    calls.clear()
    flipped["done"] = False
    with pytest.raises(ExportError, match=r"tflite_int8 loses .* BLEU .*max_bleu_drop is 0\.5"):
        _small_export(model, tokenizer, tmp_path / "strict", max_bleu_drop=0.5, **kwargs)
    assert not (tmp_path / "strict" / "export").exists()


_NO_TENSORFLOW = """
import json, sys, warnings

class _Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tensorflow", "keras", "tf_keras"):
            raise ImportError(f"{name} may not be imported on the device")

sys.meta_path.insert(0, _Refuse())
from tf_distill.runtime import Translator

sentences = json.loads(sys.argv[2])
found = {}
for precision in ("fp32", "int8"):
    translator = Translator(sys.argv[1], precision, batch_size=4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        found[precision] = translator.translate(sentences)
    found[precision + "_warnings"] = [str(w.message) for w in caught]
    found[precision + "_truncated"] = translator.last_truncated
found["loaded"] = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras"))
print(json.dumps(found))
"""


def test_runtime_translates_without_tensorflow_as_keras_does(exported, model, tokenizer):
    """tf_distill.runtime in a process where importing TensorFlow or Keras fails: batched
    fp32 output equals Keras greedy decoding of each sentence alone; overlong input is
    cut as the Keras path cuts it, and said to be; an empty sentence gives ''."""
    overlong = " ".join(["the black cat sees the white dog"] * 4)
    sentences = [*SENTENCES, overlong, "", "the cat"]
    limit = MAX_SEQUENCE_LENGTH - 1
    expected = []
    for sentence in sentences:
        ids = tokenizer.tokenize(sentence)[:limit]
        if not ids:
            expected.append("")
            continue
        out = greedy_decode(model, np.array([ids], np.int32), MAX_LENGTH, **SPECIAL)
        expected.append(tokenizer.detokenize(np.asarray(out))[0])
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", _NO_TENSORFLOW, str(exported[0]), json.dumps(sentences)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["loaded"] == []
    assert found["fp32"] == expected
    assert found["fp32_truncated"] == [s is overlong for s in sentences]
    assert len(found["fp32_warnings"]) == 1
    assert found["fp32_warnings"][0].startswith("1 of 9 sentences are longer than the model's 15")
    # int8 in batches of 4 equals the int8 file run one sentence at a time.
    one_by_one = tflite_runner(exported[0] / "export" / "student_int8.tflite")
    for sentence, got in zip(sentences, found["int8"], strict=True):
        ids = tokenizer.tokenize(sentence)[:limit]
        alone = tokenizer.detokenize(one_by_one(np.array([ids], np.int32)))[0] if ids else ""
        assert got == alone, sentence


def test_manifest_and_golden_file_describe_the_export(exported, model, tokenizer):
    """manifest.json states what the files really are (checked against the interpreter),
    and golden.jsonl's ids are what the tokenizer, Keras and each file produce."""
    export = exported[0] / "export"
    manifest = json.loads((export / "manifest.json").read_text())
    assert manifest["manifest_version"] == 1 and manifest["task"] == "translation"
    assert manifest["special_token_ids"] == SPECIAL
    assert manifest["max_source_tokens"] == MAX_SEQUENCE_LENGTH - 1
    assert manifest["max_output_tokens"] == MAX_LENGTH
    signature = manifest["signatures"]["translate"]
    assert signature["outputs"][0]["shape"] == [-1, MAX_LENGTH]
    runner = tflite_runner(export / "student_int8.tflite")
    assert runner.interpreter.get_signature_list()["translate"] == {
        "inputs": [i["name"] for i in signature["inputs"]],
        "outputs": [o["name"] for o in signature["outputs"]],
    }
    for side in ("source", "target"):
        rules = manifest["tokenizers"][side]
        assert (export / rules["vocabulary_file"]).is_file()
        assert rules["special_tokens"]["[END]"] == SPECIAL["end_id"]
    for name in TFLITE_FILES:
        variant = "tflite_" + name.split("_")[1].split(".")[0]
        entry = manifest["files"][variant]
        assert entry["path"] == name and entry["bytes"] == (export / name).stat().st_size
        assert "sequence_agreement" in entry["quality"]
    lines = (export / "golden.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(SENTENCES)
    runners = {
        f"tflite_{n.split('_')[1].split('.')[0]}": tflite_runner(export / n) for n in TFLITE_FILES
    }
    for sentence, line in zip(SENTENCES, lines, strict=True):
        golden = json.loads(line)
        assert golden["source_text"] == sentence
        assert golden["source_ids"] == tokenizer.tokenize(sentence)
        ids = np.array([golden["source_ids"]], np.int32)
        keras_ids = np.asarray(greedy_decode(model, ids, MAX_LENGTH, **SPECIAL))[0]
        assert golden["outputs"]["keras"]["output_ids"] == keras_ids.tolist()
        assert set(golden["outputs"]) == {"keras", *runners}
        for variant, run in runners.items():
            entry = golden["outputs"][variant]
            assert entry["output_ids"] == run(ids)[0].tolist(), variant
            assert entry["output_text"] == tokenizer.detokenize(entry["output_ids"])


def test_round_to_int8_grid_argument_and_argument_checks(tokenizer, tmp_path):
    """`round_to_int8_grid=True` rounds the model first (the pipeline's step), so every
    int8 weight of the file, dequantized, is the Keras weight; mismatched lists fail early."""
    from tf_distill.tflite import MIN_QUANTIZED_ELEMENTS

    keras.utils.set_random_seed(4)
    clone = build_transformer(  # wide enough for kernels the int8 converter quantizes
        tokenizer.vocabulary_size, MAX_SEQUENCE_LENGTH, 1, 2, 64, 128, dropout=0.0
    )
    perturb_weights(clone, 0.01, seed=5)
    before = [np.array(w, copy=True) for w in clone.get_weights()]
    with pytest.raises(ValueError, match="`source_texts` must hold one text per row"):
        _small_export(clone, tokenizer, tmp_path / "a", source_texts=["one"] * 3)
    with pytest.raises(ValueError, match="`references` must hold one entry per row"):
        _small_export(
            clone, tokenizer, tmp_path / "b", references=["x"], detokenize=tokenizer.detokenize
        )
    assert not (tmp_path / "a" / "export").exists()
    _small_export(
        clone,
        tokenizer,
        tmp_path / "c",
        formats=("tflite_int8",),
        min_sequence_agreement=0.0,
        round_to_int8_grid=True,
    )
    quantized = 0
    for weight in clone.weights:
        values = weight.numpy()
        if values.ndim >= 2 and values.size >= MIN_QUANTIZED_ELEMENTS:
            scale = np.abs(values).max() / 127.0
            np.testing.assert_allclose(values / scale, np.round(values / scale), atol=1e-3)
            quantized += 1
    assert quantized > 0
    changed = [not np.array_equal(a, b) for a, b in zip(clone.get_weights(), before, strict=True)]
    assert any(changed)  # rounded in place


def test_beam_search_files_decode_as_the_keras_beam_search(tokenizer, tmp_path):
    """`beam_size`: a translate_beam signature in the SavedModel and one beam file per TFLite
    precision; fp32 gives Keras' beam output; the runtime decodes with it, batched."""
    from tf_distill.decoding import beam_search
    from tf_distill.runtime import Translator

    # Without the shared fixture's raised end bias, which makes every beam end at once.
    keras.utils.set_random_seed(5)
    model = build_transformer(
        tokenizer.vocabulary_size, MAX_SEQUENCE_LENGTH, 1, 2, 16, 32, dropout=0.0
    )
    perturb_weights(model, 0.3, seed=2)

    tokenizer.save(tmp_path / "tokenizer", "source")
    tokenizer.save(tmp_path / "tokenizer", "target")
    metadata = export_student(
        model,
        tmp_path,
        _source_ids(tokenizer, SENTENCES),
        MAX_LENGTH,
        special=SPECIAL,
        tokenizer_dir=tmp_path / "tokenizer",
        min_sequence_agreement=0.0,
        detokenize=tokenizer.detokenize,
        source_texts=SENTENCES,
        beam_size=3,
    )
    export = tmp_path / "export"
    expected = []
    for sentence in SENTENCES:
        ids = np.array([tokenizer.tokenize(sentence)], np.int32)
        out = beam_search(model, ids, MAX_LENGTH, 3, 0.6, **SPECIAL)
        expected.append(tokenizer.detokenize(np.asarray(out))[0])
    assert len(set(expected)) > 2  # outputs vary, so a mix-up would show
    for precision in ("fp32", "fp16", "int8"):
        path = export / f"student_{precision}_beam.tflite"
        runner = tflite_runner(path, signature="translate_beam")
        assert runner.interpreter.get_signature_list()["translate_beam"]["inputs"] == [
            "encoder_token_ids"
        ]
        assert metadata["files"][f"tflite_{precision}_beam"]["signature"] == "translate_beam"
    assert metadata["parity"]["tflite_fp32_beam"]["sequence_agreement"] >= 0.99
    translator = Translator(tmp_path, "fp32", beam=True, batch_size=4)
    assert translator.translate(SENTENCES) == expected
    greedy = Translator(tmp_path, "fp32").translate(SENTENCES)
    assert greedy != expected  # the beam file is not the greedy one
    saved = tf.saved_model.load(str(export / "saved_model"))
    ids = _source_ids(tokenizer, SENTENCES[:1])
    got = saved.signatures["translate_beam"](encoder_token_ids=tf.constant(ids))
    assert tokenizer.detokenize(got["output_token_ids"].numpy())[0] == expected[0]
    result = translate_cli(
        "--model", str(tmp_path), "--format", "tflite-fp32", "--beam", SENTENCES[0]
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == expected[0]
    refused = translate_cli("--model", str(tmp_path), "--format", "keras", "--beam", "the cat")
    assert refused.returncode == 2 and "use a tflite format" in refused.stderr
    manifest = json.loads((export / "manifest.json").read_text())
    assert manifest["beam_size"] == 3 and "translate_beam" in manifest["signatures"]
    golden = json.loads((export / "golden.jsonl").read_text().splitlines()[0])
    assert golden["outputs"]["keras_beam"]["output_text"] == expected[0]
    assert "tflite_int8_beam" in golden["outputs"]


def test_runtime_beam_without_beam_files_says_how_to_get_them(exported):
    from tf_distill.errors import TranslateError
    from tf_distill.runtime import Translator

    with pytest.raises(TranslateError, match=r"no fp32 beam-search file.*export.beam_size"):
        Translator(exported[0], "fp32", beam=True)
