"""The `tf-distill` command line (also `python -m tf_distill` and `python train.py`)."""

import argparse
import logging
import os
import sys

from tf_distill.errors import ExportError, TFDistillError, TranslateError
from tf_distill.run_dir import RunDirectory
from tf_distill.version import __version__


class _Parser(argparse.ArgumentParser):
    """argparse with its errors in one line (usage stays behind --help)."""

    def error(self, message):
        sys.stderr.write(f"{self.prog}: error: {message}; see `{self.prog} --help`.\n")
        sys.exit(2)


def build_parser():
    parser = _Parser(
        prog="tf-distill",
        description="Teacher-student distillation of Transformers with Keras 3 / TensorFlow.",
    )
    parser.add_argument("--version", action="version", version=f"tf_distill {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    train = sub.add_parser(
        "train",
        help="teacher, baseline and distilled student, evaluation, export and report",
        description="Run the whole pipeline for one JSON config.",
    )
    train.add_argument("--config", required=True, help="JSON config (e.g. configs/small.json)")
    _add_set_argument(train, "override one config value (repeatable), e.g. training.epochs=3")
    train.add_argument("--output-dir", help="where outputs go (overrides output_dir)")
    train.add_argument(
        "--resume", action="store_true", help="continue a killed run from its last epoch"
    )
    train.set_defaults(handler=_train)
    translate = sub.add_parser(
        "translate",
        help="translate sentences with an exported student",
        description="Translate SENTENCEs (or stdin lines) with an exported student.",
    )
    translate.add_argument("--model", required=True, help="run directory or its export/ folder")
    translate.add_argument(
        "--format",
        default="tflite-int8",
        choices=["tflite-int8", "tflite-fp16", "tflite-fp32", "saved_model", "keras"],
    )
    translate.add_argument("--threads", type=int, default=None, help="TFLite interpreter threads")
    translate.add_argument("--benchmark", action="store_true", help="print median latency")
    translate.add_argument(
        "--beam",
        action="store_true",
        help="beam search (the export's student_<precision>_beam.tflite; tflite formats)",
    )
    translate.add_argument("sentences", nargs="*", metavar="SENTENCE")
    translate.set_defaults(handler=_translate)
    classify = sub.add_parser(
        "classify",
        help="classify texts with an exported classifier",
        description="Classify TEXTs (or stdin lines) with an exported student classifier "
        "(LiteRT interpreter, no TensorFlow). Prints label<TAB>probability per text.",
    )
    classify.add_argument("--model", required=True, help="run directory or its export/ folder")
    classify.add_argument(
        "--format", default="tflite-int8", choices=["tflite-int8", "tflite-fp16", "tflite-fp32"]
    )
    classify.add_argument("--threads", type=int, default=None, help="TFLite interpreter threads")
    classify.add_argument("texts", nargs="*", metavar="TEXT")
    classify.set_defaults(handler=_classify)
    export = sub.add_parser(
        "export",
        help="export a finished run's student again (SavedModel, TFLite), with parity checks",
        description="Re-export the student of a run directory written by `train`.",
    )
    export.add_argument("--run-dir", required=True, help="a run's output directory")
    _add_set_argument(export, "override the run's config, e.g. export.int8_mode=full")
    export.set_defaults(handler=_export)
    info = sub.add_parser("info", help="print the versions of the stack tf_distill runs on")
    info.set_defaults(handler=_info)
    return parser


def _add_set_argument(parser, help_text):
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help=help_text,
    )


def _train(args):
    from tf_distill import config as config_lib

    overrides = list(args.overrides)
    if args.output_dir:
        overrides.append(f"output_dir={args.output_dir}")
    config = config_lib.load(args.config, overrides)
    run_dir = RunDirectory(config.output_dir)  # checked before TensorFlow loads
    run_dir.check_start(args.resume)
    if args.resume:
        run_dir.check_resume_config(config.to_dict(), config_lib.Config().to_dict())
    _import_tensorflow_quietly()
    from tf_distill.pipeline import run_pipeline

    report = run_pipeline(config, resume=args.resume)
    print(f"report: {config.output_dir}/report.md")
    ratios = report.get("ratios", {})
    if ratios.get("macro_f1_vs_teacher") is not None:
        print(
            f"student: {ratios['macro_f1_vs_teacher']:.1%} of the teacher's macro-F1 with "
            f"{ratios['params_vs_teacher']:.1%} of its parameters"
        )
    if ratios.get("bleu_vs_teacher") is not None:
        print(
            f"student: {ratios['bleu_vs_teacher']:.1%} of the teacher's BLEU with "
            f"{ratios['params_vs_teacher']:.1%} of its parameters"
        )
    return 0


def _export(args):
    RunDirectory(args.run_dir).finished_run_files()  # a bad --run-dir fails before TF loads
    _import_tensorflow_quietly()
    from tf_distill.pipeline import export_run

    summary = export_run(args.run_dir, args.overrides)
    for variant, size in summary["files"].items():
        parity = summary["parity"].get(variant, {})
        agreement = parity.get("sequence_agreement", parity.get("label_agreement"))
        same = "" if agreement is None else f", {agreement:.1%} identical to Keras"
        print(f"{variant}: {size:,} bytes{same}")
    print(f"export: {args.run_dir}/export")
    return 0


def _translate(args):
    from tf_distill import translate

    if not args.format.startswith("tflite"):  # the TFLite formats need no TensorFlow
        _import_tensorflow_quietly()

    return translate.main(args)


def _classify(args):
    from tf_distill import runtime

    texts = list(args.texts)
    if not texts:
        try:
            texts = [line.rstrip("\n") for line in sys.stdin if line.strip()]
        except UnicodeDecodeError:
            raise TranslateError("stdin is not UTF-8 text; pass UTF-8 lines.") from None
    if not texts:
        raise TranslateError("Nothing to classify: give TEXT arguments or lines on stdin.")
    classifier = runtime.Classifier(args.model, args.format.split("-")[1], args.threads)
    probabilities = classifier.probabilities(texts)
    for row in probabilities:
        best = int(row.argmax())
        print(f"{classifier.label_names[best]}\t{row[best]:.4f}")
    return 0


def _info(args):
    _import_tensorflow_quietly()
    import keras
    import tensorflow as tf

    print(f"tf_distill {__version__}")
    print(f"tensorflow {tf.__version__}")
    print(f"keras {keras.__version__} (backend: {keras.backend.backend()})")
    return 0


def _import_tensorflow_quietly():
    """Imports TensorFlow with file descriptor 2 pointed at /dev/null.

    TensorFlow's C++ start-up lines (oneDNN and CUDA probes) are written before its logging
    is set up, so TF_CPP_MIN_LOG_LEVEL does not silence them, and they would precede every
    message of ours. A failing import still raises its exception (reported after stderr is
    back). Set TF_CPP_MIN_LOG_LEVEL to 0 or 1 to see the lines.
    """
    if "tensorflow" in sys.modules or os.environ.get("TF_CPP_MIN_LOG_LEVEL") in ("0", "1"):
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            try:
                import tensorflow  # noqa: F401
            finally:
                os.dup2(saved, 2)
    finally:
        os.close(saved)


def _configure_process():
    """What a program (not a library) decides: TensorFlow's C++ start-up chatter (CUDA
    probes, CPU feature notes) stays quiet unless the user set TF_CPP_MIN_LOG_LEVEL, Keras
    runs on TensorFlow, and tf_distill's progress goes to stdout with a clock."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    logger = logging.getLogger("tf_distill")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(
            logging.Formatter("[tf_distill %(asctime)s] %(message)s", datefmt="%H:%M:%S")
        )
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    # TensorFlow gives the root logger a handler of its own: without this, every line
    # would be printed twice.
    logger.propagate = False


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_process()
    try:
        return args.handler(args)
    except TFDistillError as error:
        # Config, data, model file, output path, CLI input: one line, no traceback.
        print(f"tf-distill: error: {error}", file=sys.stderr)
        return 2
    except ExportError as error:
        # A parity check that fell short: the model, not the input, is at fault.
        print(f"tf-distill: export failed: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
