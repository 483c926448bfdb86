"""Translation on a device: an export folder, the LiteRT interpreter and the tokenizer.

This module imports numpy, `ai_edge_litert` and tf_distill's tokenizer (plain Python) and
nothing else: no TensorFlow, no Keras. It does what an app on a phone does with the files
of `export/` (a `.tflite` file, `tokenizer/`, `export.json`), so it is also the reference
a mobile implementation can compare itself with:

    from tf_distill.runtime import Translator
    translator = Translator("saved_models/small", precision="int8")
    translator.translate(["The cat sleeps.", "Where is the station?"])

Each call tokenizes the sentences, cuts any longer than the model takes (as the Keras path
and `tf-distill translate` do, with a `TFDistillWarning`; `last_truncated` says which),
decodes them in batches of similar length through the model's `translate` signature
(greedy decoding inside the graph) and detokenizes the output ids.
"""

import json
import time
import warnings
from pathlib import Path

import numpy as np

from tf_distill.data.tokenizer import Tokenizer
from tf_distill.errors import TFDistillWarning, TranslateError

FILES = {
    "int8": "student_int8.tflite",
    "fp16": "student_fp16.tflite",
    "fp32": "student_fp32.tflite",
}
SIGNATURE = "translate"
BEAM_SIGNATURE = "translate_beam"
INPUT_NAME = "encoder_token_ids"


def find_export_dir(path):
    """`path` itself or its `export/` folder, whichever holds `export.json`."""
    path = Path(path)
    for candidate in (path, path / "export"):
        if (candidate / "export.json").is_file():
            return candidate
    raise TranslateError(
        f"{str(path)!r} holds no export (no export.json). Pass a run's output directory "
        "or its export/ folder, e.g. saved_models/small (--model on the command line)."
    )


def read_metadata(export_dir):
    """The `export.json` of an export directory, or a TranslateError naming the file."""
    path = Path(export_dir) / "export.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise TranslateError(f"{path} is unreadable ({error}). Re-run the export.") from None


def load_tokenizers(export_dir):
    """The (source, target) tokenizers saved in an export directory."""
    tokenizer_dir = Path(export_dir) / "tokenizer"
    try:
        return Tokenizer.load(tokenizer_dir, "source"), Tokenizer.load(tokenizer_dir, "target")
    except (OSError, ValueError) as error:
        raise TranslateError(f"tokenizer files in {tokenizer_dir} are unusable: {error}") from None


def _load_runner(path, signature, num_threads):
    """The LiteRT interpreter of a `.tflite` file and its `signature` runner."""
    from ai_edge_litert.interpreter import Interpreter

    try:
        interpreter = Interpreter(model_path=str(path), num_threads=num_threads)
        return interpreter, interpreter.get_signature_runner(signature)
    except Exception as error:  # a corrupt file fails in the interpreter's own way
        raise TranslateError(
            f"{path} could not be loaded ({type(error).__name__}: {str(error)[:200]}). "
            "Re-run the export."
        ) from None


class Translator:
    """A translation student exported by tf_distill, run by the LiteRT interpreter.

    Args:
        model_dir: a run directory or its `export/` folder.
        precision: `"int8"` (the smallest file), `"fp16"` or `"fp32"`.
        num_threads: interpreter threads (None: LiteRT's default).
        batch_size: sentences decoded per interpreter call.
        beam: decode with beam search (the export's `student_<precision>_beam.tflite`,
            made when the export has a `beam_size`) instead of greedily.

    Attributes:
        max_source_tokens: the longest source the model takes, in tokens.
        last_truncated: for each sentence of the last `translate` call, whether it was cut.
        last_latency_ms: wall time of the last `translate` call, in milliseconds.
        load_ms: time taken to load the model and the tokenizers.
    """

    def __init__(self, model_dir, precision="int8", num_threads=None, batch_size=16, beam=False):
        start = time.perf_counter()
        if precision not in FILES:
            raise TranslateError(
                f"precision must be one of {sorted(FILES)}. Received: {precision!r}."
            )
        if int(batch_size) < 1:
            raise TranslateError(f"batch_size must be at least 1. Received: {batch_size!r}.")
        self.batch_size = int(batch_size)
        self.export_dir = find_export_dir(model_dir)
        metadata_path = self.export_dir / "export.json"
        self.metadata = read_metadata(self.export_dir)
        try:
            self.special = dict(self.metadata["special_token_ids"])
            self.max_source_tokens = int(self.metadata["max_sequence_length"]) - 1
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise TranslateError(
                f"{metadata_path} is unreadable or incomplete ({type(error).__name__}: "
                f"{error}). Re-run the export."
            ) from None
        if self.metadata.get("task", "translation") != "translation":
            raise TranslateError(
                f"{self.export_dir} holds a {self.metadata['task']} model, not a translator."
            )
        name = FILES[precision].replace(".tflite", "_beam.tflite" if beam else ".tflite")
        path = self.export_dir / name
        if not path.is_file():
            what = f"{precision} beam-search" if beam else precision
            raise TranslateError(
                f"{path} is missing: this export has no {what} file. Exported: "
                f"{sorted(self.metadata.get('files', {}))}."
                + (" Export with a beam size (export.beam_size) for beam search." if beam else "")
            )
        self.source_tokenizer, self.target_tokenizer = load_tokenizers(self.export_dir)
        self.interpreter, self._runner = _load_runner(
            path, BEAM_SIGNATURE if beam else SIGNATURE, num_threads
        )
        self.last_truncated = []
        self.last_latency_ms = None
        self.load_ms = (time.perf_counter() - start) * 1000

    def encode(self, sentences):
        """Source ids of each sentence, cut to `max_source_tokens`, and which were cut."""
        rows = self.source_tokenizer.tokenize(list(sentences))
        truncated = [len(row) > self.max_source_tokens for row in rows]
        return [list(row)[: self.max_source_tokens] for row in rows], truncated

    def translate_ids(self, rows):
        """Output ids (one list per row, cut at the end token) for lists of source ids."""
        rows = [list(row) for row in rows]
        out = [[] for _ in rows]
        # Rows of similar length share a call, so that little padding is decoded.
        order = sorted((i for i, row in enumerate(rows) if row), key=lambda i: len(rows[i]))
        pad, end = self.special["pad_id"], self.special["end_id"]
        for first in range(0, len(order), self.batch_size):
            chunk = order[first : first + self.batch_size]
            width = max(len(rows[i]) for i in chunk)
            batch = np.full((len(chunk), width), pad, np.int32)
            for j, i in enumerate(chunk):
                batch[j, : len(rows[i])] = rows[i]
            result = self._runner(**{INPUT_NAME: batch})
            ids = np.asarray(next(iter(result.values())))
            for j, i in enumerate(chunk):
                row = ids[j].tolist()
                out[i] = row[: row.index(end) + 1] if end in row else row
        return out

    def translate(self, sentences):
        """Translations of a list of strings (a single string gives a single string)."""
        single = isinstance(sentences, str)
        sentences = [sentences] if single else list(sentences)
        for sentence in sentences:
            if not isinstance(sentence, str):
                raise TranslateError(
                    f"sentences must be strings. Received: {type(sentence).__name__}."
                )
        start = time.perf_counter()
        rows, self.last_truncated = self.encode(sentences)
        if any(self.last_truncated):
            warnings.warn(
                f"{sum(self.last_truncated)} of {len(sentences)} sentences are longer than "
                f"the model's {self.max_source_tokens} source tokens and were cut to that "
                "length (last_truncated says which).",
                TFDistillWarning,
                stacklevel=2,
            )
        texts = [self.target_tokenizer.detokenize(ids) for ids in self.translate_ids(rows)]
        self.last_latency_ms = (time.perf_counter() - start) * 1000
        return texts[0] if single else texts


class Classifier:
    """A text classifier exported by tf_distill, run by the LiteRT interpreter.

    Like `Translator`, it needs numpy, `ai_edge_litert` and the tokenizer only: it does
    what an app does with the export's `student_<precision>.tflite`, `tokenizer/` and
    `export.json` (which holds the label names).

        from tf_distill.runtime import Classifier
        classifier = Classifier("saved_models/sms_spam", precision="int8")
        classifier.classify(["WINNER!! Claim your prize now", "see you at 6"])

    Args:
        model_dir: a run directory or its `export/` folder.
        precision: `"int8"`, `"fp16"` or `"fp32"`.
        num_threads: interpreter threads (None: LiteRT's default).
        batch_size: texts per interpreter call.

    Attributes:
        label_names: the classes, in the model's output order.
        max_tokens: the longest input the model takes; longer texts are cut (with a
            `TFDistillWarning`; `last_truncated` says which).
        last_latency_ms, load_ms: as in `Translator`.
    """

    def __init__(self, model_dir, precision="int8", num_threads=None, batch_size=32):
        start = time.perf_counter()
        if precision not in FILES:
            raise TranslateError(
                f"precision must be one of {sorted(FILES)}. Received: {precision!r}."
            )
        if int(batch_size) < 1:
            raise TranslateError(f"batch_size must be at least 1. Received: {batch_size!r}.")
        self.batch_size = int(batch_size)
        self.export_dir = find_export_dir(model_dir)
        self.metadata = read_metadata(self.export_dir)
        if self.metadata.get("task") != "classification":
            raise TranslateError(
                f"{self.export_dir} holds a {self.metadata.get('task', 'translation')} model, "
                "not a classifier: use `tf-distill translate`."
            )
        try:
            self.max_tokens = int(self.metadata["max_sequence_length"])
            self.label_names = list(self.metadata["label_names"])
        except (KeyError, TypeError, ValueError) as error:
            raise TranslateError(
                f"{self.export_dir / 'export.json'} is incomplete ({type(error).__name__}: "
                f"{error}). Re-run the export."
            ) from None
        path = self.export_dir / FILES[precision]
        if not path.is_file():
            raise TranslateError(
                f"{path} is missing: this export has no {precision} file. Exported: "
                f"{sorted(self.metadata.get('files', {}))}."
            )
        tokenizer_dir = self.export_dir / "tokenizer"
        try:
            self.tokenizer = Tokenizer.load(tokenizer_dir, "source")
        except (OSError, ValueError) as error:
            raise TranslateError(
                f"tokenizer files in {tokenizer_dir} are unusable: {error}"
            ) from None
        self.interpreter, self._runner = _load_runner(path, "classify", num_threads)
        self.last_truncated = []
        self.last_latency_ms = None
        self.load_ms = (time.perf_counter() - start) * 1000

    def probabilities(self, texts):
        """(N, C) float32 class probabilities of a list of strings."""
        texts = list(texts)
        for text in texts:
            if not isinstance(text, str):
                raise TranslateError(f"texts must be strings. Received: {type(text).__name__}.")
        start = time.perf_counter()
        rows = self.tokenizer.tokenize(texts)
        self.last_truncated = [len(row) > self.max_tokens for row in rows]
        if any(self.last_truncated):
            warnings.warn(
                f"{sum(self.last_truncated)} of {len(texts)} texts are longer than the "
                f"model's {self.max_tokens} tokens and were cut to that length "
                "(last_truncated says which).",
                TFDistillWarning,
                stacklevel=2,
            )
        # An empty text reads as one unknown token: the model needs one real position.
        rows = [list(row)[: self.max_tokens] or [self.tokenizer.unk_id] for row in rows]
        out = np.zeros((len(rows), len(self.label_names)), np.float32)
        order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
        for first in range(0, len(order), self.batch_size):
            chunk = order[first : first + self.batch_size]
            width = max(len(rows[i]) for i in chunk)
            batch = np.full((len(chunk), width), self.tokenizer.pad_id, np.int32)
            for j, i in enumerate(chunk):
                batch[j, : len(rows[i])] = rows[i]
            result = self._runner(token_ids=batch)
            out[chunk] = np.asarray(next(iter(result.values())))
        self.last_latency_ms = (time.perf_counter() - start) * 1000
        return out

    def classify(self, texts):
        """The label name of each text (a single string gives a single label)."""
        single = isinstance(texts, str)
        probabilities = self.probabilities([texts] if single else texts)
        labels = [self.label_names[i] for i in probabilities.argmax(-1)]
        return labels[0] if single else labels
