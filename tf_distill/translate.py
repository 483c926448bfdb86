"""The reference client: load an exported student, tokenize, decode, detokenize.

Used by `python -m tf_distill translate`. It runs every exported format the same way an app
would: TFLite files through the LiteRT interpreter, one `translate` call per sentence.
"""

import statistics
import sys
import time

import numpy as np

from tf_distill.errors import TranslateError  # noqa: F401  (raised here; re-exported)
from tf_distill.runtime import find_export_dir, load_tokenizers, read_metadata

FORMATS = {
    "tflite-int8": "student_int8.tflite",
    "tflite-fp16": "student_fp16.tflite",
    "tflite-fp32": "student_fp32.tflite",
    "saved_model": "saved_model",
    "keras": "student.keras",
}


class Translator:
    """Translates sentences with one exported format of a student."""

    def __init__(self, model_dir, fmt="tflite-int8", num_threads=None, beam=False):
        if fmt not in FORMATS:
            raise TranslateError(f"--format must be one of {list(FORMATS)}. Received: {fmt!r}.")
        self.export_dir = find_export_dir(model_dir)
        self.metadata = read_metadata(self.export_dir)
        path = self.export_dir / FORMATS[fmt]
        if not path.exists():
            raise TranslateError(
                f"{path} is missing: this export has no {fmt!r} file. "
                f"Exported formats: {sorted(self.metadata.get('files', {}))}."
            )
        self.source_tokenizer, self.target_tokenizer = load_tokenizers(self.export_dir)
        self.max_length = int(self.metadata["max_sequence_length"]) - 1
        if beam and not fmt.startswith("tflite"):
            raise TranslateError(
                f"--beam runs the exported beam-search files: use a tflite format, not {fmt!r}."
            )
        self.beam = beam
        self._run = self._load(fmt, path, num_threads)

    def _load(self, fmt, path, num_threads):
        try:
            if fmt.startswith("tflite"):
                # The device runtime: LiteRT and the tokenizer, no TensorFlow to import.
                from tf_distill import runtime

                precision = fmt.split("-")[1]
                return runtime.Translator(
                    self.export_dir, precision, num_threads, beam=self.beam
                ).translate_ids
            import tensorflow as tf

            if fmt == "saved_model":
                signature = tf.saved_model.load(str(path)).signatures["translate"]
                return lambda ids: signature(encoder_token_ids=tf.constant(ids))[
                    "output_token_ids"
                ].numpy()
            from tf_distill import decoding, load_model

            model = load_model(path)
            special = self.metadata["special_token_ids"]
            length = self.metadata["max_decode_length"]
            return lambda ids: np.asarray(decoding.greedy_decode(model, ids, length, **special))
        except TranslateError:
            raise
        except Exception as error:  # a corrupt file fails in the loader's own way
            raise TranslateError(
                f"{path} could not be loaded ({type(error).__name__}: {str(error)[:200]}). "
                "Re-run the export."
            ) from None

    def encode(self, sentence):
        ids = list(self.source_tokenizer.tokenize([sentence])[0])
        truncated = len(ids) > self.max_length
        return np.array([ids[: self.max_length]], np.int32), truncated

    def translate(self, sentence):
        ids, truncated = self.encode(sentence)
        if truncated:
            print(
                f"tf-distill: warning: input longer than {self.max_length} tokens was truncated",
                file=sys.stderr,
            )
        out = self._run(ids)
        return self.target_tokenizer.detokenize(out)[0]


def _stdin_lines():
    """The sentences piped in, one per line; a TranslateError for text that is not UTF-8."""
    raw = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read()
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            line = raw[: error.start].count(b"\n") + 1
            raise TranslateError(
                f"stdin line {line} is not UTF-8 text (byte {raw[error.start]:#x}). "
                "Convert the input to UTF-8, e.g. with iconv."
            ) from None
    return raw.splitlines()


def main(args):
    sentences = args.sentences or _stdin_lines()
    translator = Translator(args.model, args.format, num_threads=args.threads, beam=args.beam)
    times = []
    for sentence in sentences:
        if not sentence.strip():
            print("")  # keep line alignment with the input
            continue
        start = time.perf_counter()
        print(translator.translate(sentence), flush=True)
        times.append((time.perf_counter() - start) * 1000)
    if args.benchmark and times:
        print(
            f"latency: median {statistics.median(times):.2f} ms per sentence over "
            f"{len(times)} sentences ({args.format})",
            file=sys.stderr,
        )
    return 0
