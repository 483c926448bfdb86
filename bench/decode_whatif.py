"""What a decode step would cost on the device if the student's decoder had no
self-attention, or an SSRU in its place: a bound on what that architecture lever can buy
for the student-vs-teacher ratio, measured before anyone trains such a student.

The run's trained teacher (TFLite fp32) and student (TFLite int8) are converted with the
export's code (`tf_distill.decoding.lean`), and the student twice more with its step
rewritten: "ssru", the self-attention block replaced by a simple recurrent unit on its
own (B, D) state, f = sigmoid(x Wq), c = f c' + (1 - f) x Wv, out = relu(c) (Kim et al.
2019's SSRU, here reusing the query and value kernels so no training is needed), and
"none", the self-attention block removed. The outputs of those two are meaningless; only
their time is measured.

Each file is converted twice: decoding 1 token (what runs once per call: encoder,
cross-attention keys and values, loop set-up, one step) and decoding up to `max_length`
tokens with the end token replaced by the last token of the vocabulary, which the models
rarely produce. Per generated token = (long - one) / (tokens the long file made - 1); the
projected time per sentence = one-token time + (tokens - 1) x per token, with the mean
number of tokens the real student generates on the same sentences. Timing: LiteRT, one
thread, batch 1, the sentences one per call, best of 3 per sentence, round-robin over
the files for `--repeats` rounds, medians.

    python bench/decode_whatif.py --run-dir saved_models/small
"""

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", default="saved_models/small")
    parser.add_argument("--sentences", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=9, help="rounds over the files")
    parser.add_argument("--seed", type=int, default=12345)
    parser.add_argument(
        "--modes",
        nargs="+",
        default=["ssru", "none"],
        help="the student's rewritten steps: ssru or none, each optionally +rms and "
        "+vocab/N (e.g. ssru+rms+vocab/1000)",
    )
    parser.add_argument("--output", default=None, help="write the figures as JSON here")
    args = parser.parse_args(argv)
    for mode in args.modes:
        attention, *extras = mode.split("+")
        if attention not in ("ssru", "none") or not all(
            e == "rms" or (e.startswith("vocab/") and e[6:].isdigit() and int(e[6:]) > 0)
            for e in extras
        ):
            parser.error(
                f"--modes {mode!r}: use ssru or none, optionally with +rms and +vocab/N "
                "(N > 0), e.g. ssru+rms+vocab/1000"
            )
    return args


@contextlib.contextmanager
def rewritten_step(mode):
    """`LeanDecoder`'s step and caches as `mode` has them, for the duration of the block
    (None: unchanged). `mode`: "ssru" or "none" (the self-attention block), optionally
    with "+rms" (each LayerNorm of the step an RMSNorm: no mean, no offset) and
    "+vocab/N" (the output layer and ARG_MAX over the first N tokens only)."""
    import tensorflow as tf

    from tf_distill.decoding import lean

    if mode is None:
        yield
        return
    attention_mode, *extras = mode.split("+")
    rms = "rms" in extras
    vocabulary = next((int(e.split("/")[1]) for e in extras if e.startswith("vocab/")), None)

    def norm(layer_norm, x):
        if not rms:
            return lean._layer_norm(layer_norm, x)
        mean_square = tf.reduce_mean(tf.square(x), axis=-1, keepdims=True)
        return x * (tf.math.rsqrt(mean_square + layer_norm.epsilon) * layer_norm.gamma)

    def residual(self, x, layer_norm, block):
        out = block(norm(layer_norm, x) if self.pre_norm else x)
        extra = ()
        if isinstance(out, tuple):
            out, extra = out[0], out[1:]
        out = x + out if self.pre_norm else norm(layer_norm, x + out)
        return (out, *extra) if extra else out

    def empty_caches(self, rows):
        width = int(self.embedding.hidden_dim)
        return tuple(tf.zeros(tf.stack([rows, width])) for _ in range(2 * len(self.layers)))

    def ssru(attention, y, state, unused):
        forget = tf.sigmoid(lean._dense(attention.query_dense, y))
        state = forget * state + (1.0 - forget) * lean._dense(attention.value_dense, y)
        return tf.nn.relu(state), state, unused

    def step(self, last, step, caches):
        x = tf.gather(self.embedding.token_embeddings, last) * self.token_scale
        x = x + tf.gather(self.embedding.position_embeddings, step)
        new_caches = list(caches)
        for i, layer in enumerate(self.layers):
            if attention_mode == "ssru":
                x, *new_caches[2 * i : 2 * i + 2] = self._residual(
                    x,
                    layer.self_attention_norm,
                    lambda y, a=layer.self_attention, c=caches[2 * i : 2 * i + 2]: ssru(a, y, *c),
                )
            x = self._residual(
                x,
                layer.cross_attention_norm,
                lambda y, a=layer.cross_attention, kv=self.cross[i]: lean._cross_attention(
                    a, y, *kv, self.cross_bias
                ),
            )
            x = self._residual(
                x, layer.feed_forward_norm, lambda y, f=layer.feed_forward: lean._ffn(f, y)
            )
        if self.pre_norm:
            x = norm(self.final_norm, x)
        if self.tied is not None:
            logits = tf.matmul(x, self.tied[:vocabulary], transpose_b=True)
        else:
            logits = tf.matmul(x, self.kernel[:, :vocabulary])
        return logits + self.logit_bias[:vocabulary], tuple(new_caches)

    saved = lean.LeanDecoder.step, lean.LeanDecoder.empty_caches, lean.LeanDecoder._residual
    lean.LeanDecoder.step, lean.LeanDecoder.empty_caches = step, empty_caches
    lean.LeanDecoder._residual = residual
    try:
        yield
    finally:
        (
            lean.LeanDecoder.step,
            lean.LeanDecoder.empty_caches,
            lean.LeanDecoder._residual,
        ) = saved


def converted(model, name, precision, metadata, directory, max_length, end_id):
    from device_table import converted_files

    special = {**metadata["special_token_ids"], "end_id": end_id}
    settings = {**metadata, "beam_size": None, "max_decode_length": max_length}
    settings["special_token_ids"] = special
    ((_, path),) = converted_files(
        model, f"{name}_{max_length}", (precision,), settings, directory
    ).items()
    return path


def timings(paths, rows, rounds):
    """{path: median over rounds of the mean best-of-3 ms per sentence}."""
    from ai_edge_litert.interpreter import Interpreter

    runners = {
        p: Interpreter(model_path=str(p), num_threads=1).get_signature_runner("translate")
        for p in paths
    }
    found = {p: [] for p in paths}
    for _ in range(rounds):
        for path, runner in runners.items():
            total = 0.0
            for row in rows:
                best = float("inf")
                for _ in range(3):
                    start = time.perf_counter()
                    runner(encoder_token_ids=row)
                    best = min(best, time.perf_counter() - start)
                total += best
            found[path].append(total / len(rows) * 1000)
    return {p: statistics.median(v) for p, v in found.items()}


def main(argv=None):
    import numpy as np
    from device_table import run_sentences

    import tf_distill
    from tf_distill.tflite import loop_body_op_count

    args = parse_args(argv)
    run_dir = Path(args.run_dir)
    export = run_dir / "export"
    metadata, rows = run_sentences(run_dir, args.sentences, args.seed)
    rows = [row[None] for row in rows]
    special = metadata["special_token_ids"]
    full = int(metadata["max_decode_length"])
    directory = Path(tempfile.mkdtemp())

    def generated(path, end_id):  # mean tokens up to and including `end_id`
        from ai_edge_litert.interpreter import Interpreter

        runner = Interpreter(model_path=str(path), num_threads=1).get_signature_runner("translate")
        counts = []
        for row in rows:
            ids = list(np.asarray(next(iter(runner(encoder_token_ids=row).values())))[0])
            counts.append(ids.index(end_id) + 1 if end_id in ids else full)
        return float(np.mean(counts))

    teacher = tf_distill.load_model(run_dir / "teacher.keras")
    student = tf_distill.load_model(run_dir / "student.keras")
    vocabulary = int(teacher.get_layer("decoder_embedding").vocabulary_size)
    never = vocabulary - 1  # an end token the models are not asked to stop at
    cases = [("teacher", teacher, "fp32", None)] + [
        (f"student {m or 'attention'}", student, "int8", m) for m in [None, *args.modes]
    ]
    files = {}
    for label, model, precision, mode in cases:
        with rewritten_step(mode):
            for length in (1, full):
                tag = label.replace(" ", "_")
                files[(label, length)] = converted(
                    model, tag, precision, metadata, directory, length, never
                )
    # Real lengths: the real files, with the real end token.
    real = {
        "teacher": converted(
            teacher, "teacher_real", "fp32", metadata, directory, full, special["end_id"]
        ),
        "student": export / "student_int8.tflite",
    }
    tokens = {name: generated(path, special["end_id"]) for name, path in real.items()}
    ms = timings(list(files.values()) + list(real.values()), rows, args.repeats)
    report = {"rounds": args.repeats, "sentences": len(rows), "tokens": tokens, "rows": {}}
    for label, _, _, _ in cases:
        one, everything = ms[files[(label, 1)]], ms[files[(label, full)]]
        # A model may still emit `never` (a real token) and stop early: count what it made.
        made = generated(files[(label, full)], never)
        per_token = (everything - one) / (made - 1)
        n = tokens["teacher" if label == "teacher" else "student"]
        report["rows"][label] = {
            "loop_body_ops": loop_body_op_count(files[(label, full)].read_bytes()),
            "long_file_tokens": made,
            "one_token_ms": round(one, 4),
            "per_token_us": round(per_token * 1000, 2),
            "projected_ms": round(one + (n - 1) * per_token, 4),
        }
    report["measured_ms"] = {name: round(ms[path], 4) for name, path in real.items()}
    teacher_ms = report["rows"]["teacher"]["projected_ms"]
    print(
        "| model | decoder self-attention | loop body ops | 1-token call ms | "
        "us / further token | projected ms / sentence | teacher / this |"
    )
    print("|---|---|---:|---:|---:|---:|---:|")
    for label, row in report["rows"].items():
        name, _, step = label.partition(" ")
        print(
            f"| {name} | {step or 'attention'} | {row['loop_body_ops']} | "
            f"{row['one_token_ms']:.3f} | "
            f"{row['per_token_us']:.1f} | {row['projected_ms']:.3f} | "
            f"{teacher_ms / row['projected_ms']:.1f}x |"
        )
    print(json.dumps(report))
    if args.output:
        Path(args.output).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
