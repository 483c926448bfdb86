"""TFLite ops in the decode loop's body and time per generated token, for small.json-shaped
models with random weights: the lean loop (tf_distill.decoding.lean) against the standard
one (the Keras layers' step), at any vocabulary size.

Each model is the pipeline's own teacher / student of the config
(`model_stages.build_model`, float32, random weights, no training), exported through the
export's own `_signatures_module` and `convert_tflite`, and run by the LiteRT interpreter
on one thread over `--sentences` random sources, one per call, `--repeats` rounds.
Random weights rarely produce the end token, so most calls decode the full `--max-length`
tokens; the figure is the median time per generated token (encoder and call overhead
included, spread over the tokens).

    python bench/decode_ops.py --config configs/small.json
    python bench/decode_ops.py --config configs/small.json --roles student --vocabulary 500
"""

import argparse
import dataclasses
import json
import os
import statistics
import sys
import tempfile
import time
import types

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/small.json")
    parser.add_argument("--roles", nargs="+", default=["teacher", "student"])
    parser.add_argument("--precisions", nargs="+", default=["fp32", "int8"])
    parser.add_argument("--loops", nargs="+", default=["standard", "lean"])
    parser.add_argument("--vocabulary", type=int, default=None, help="default: the config's")
    parser.add_argument("--max-length", type=int, default=40)
    parser.add_argument("--sentences", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--output", default=None)
    return parser.parse_args(argv)


def per_token_us(content, rows, end_id, repeats):
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_content=content, num_threads=1).get_signature_runner("translate")
    runner(encoder_token_ids=rows[0])  # warm-up
    found = []
    for _ in range(repeats):
        for row in rows:
            start = time.perf_counter()
            out = np.asarray(next(iter(runner(encoder_token_ids=row).values())))[0]
            seconds = time.perf_counter() - start
            ids = list(out)
            found.append(seconds / (ids.index(end_id) + 1 if end_id in ids else len(ids)))
    return statistics.median(found) * 1e6


def main(argv=None):
    import keras
    import numpy as np
    import tensorflow as tf

    from tf_distill.config import load as load_config
    from tf_distill.export.student import _signatures_module
    from tf_distill.pipeline import model_stages
    from tf_distill.tflite import convert_tflite, loop_body_op_count, main_graph_op_count

    args = parse_args(argv)
    config = load_config(args.config)
    vocabulary = args.vocabulary or config.tokenizer.vocabulary_size
    sizes = types.SimpleNamespace(vocabulary_size=vocabulary)
    tokenizers = types.SimpleNamespace(source=sizes, target=sizes)
    # Float32, as the export converts every model (the config may train in mixed precision).
    config = dataclasses.replace(
        config, training=dataclasses.replace(config.training, mixed_precision="float32")
    )
    special = {"start_id": 2, "end_id": 3, "pad_id": 0}
    rng = np.random.default_rng(0)
    lengths = rng.integers(5, 15, args.sentences)
    rows = [rng.integers(4, vocabulary, size=(1, n)).astype(np.int32) for n in lengths]
    work = tempfile.mkdtemp()
    results = []
    print(
        "| model | loop | format | main graph ops | loop body ops | us / generated token | bytes |"
    )
    print("|---|---|---|---:|---:|---:|---:|")
    for role in args.roles:
        keras.utils.set_random_seed(1)
        model = model_stages.build_model(config, role, tokenizers)  # the pipeline's own
        for loop in args.loops:
            module = _signatures_module(model, args.max_length, special, lean=loop == "lean")
            saved = os.path.join(work, f"{role}_{loop}")
            tf.saved_model.save(module, saved, signatures={"translate": module.translate})
            for precision in args.precisions:
                content = convert_tflite(saved, f"tflite_{precision}", "translate")
                row = {
                    "model": role,
                    "loop": loop,
                    "format": f"tflite {precision}",
                    "main_graph_ops": main_graph_op_count(content),
                    "loop_body_ops": loop_body_op_count(content),
                    "us_per_token": round(per_token_us(content, rows, 3, args.repeats), 1),
                    "bytes": len(content),
                }
                results.append(row)
                print(
                    f"| {role} | {loop} | {row['format']} | {row['main_graph_ops']} | "
                    f"{row['loop_body_ops']} | "
                    f"{row['us_per_token']:.1f} | {row['bytes']:,} |",
                    flush=True,
                )
    if args.output:
        with open(args.output, "w") as out:
            json.dump({"vocabulary": vocabulary, "results": results}, out, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
