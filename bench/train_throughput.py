"""Training throughput of tf_distill against keras-hub layers + `keras.distillation`.

Measures milliseconds per optimizer step and real (non-pad) target tokens per second for:

- teacher training      `Distiller(None, teacher, alpha=1.0)`: masked CE, no teacher;
- student training      `Distiller(None, student, alpha=1.0)`: the no-teacher baseline;
- distillation          `Distiller(teacher, student)`: frozen teacher forward + student step;
- peer distillation     `keras.distillation.Distiller` with
                        `LogitsDistillation(temperature, loss=keras.losses.KLDivergence())`
                        over a teacher and student built from keras-hub's
                        `TokenAndPositionEmbedding`, `TransformerEncoder`, `TransformerDecoder`
                        at the same dims (pre-norm, GELU, same dropout);

each with `jit_compile=False` and `jit_compile=True`, in one process on the same data.

Method: synthetic random token batches with padding (real lengths uniform in [L/2, L]),
pre-built as tensors and served by a repeated `tf.data` dataset. Every case is warmed up
(traced, and XLA-compiled where asked) before anything is timed. Timing is round-robin:
each repeat runs every case once for `--steps` steps, so a burst of load from another
process on a shared CPU hits all cases alike. A repeat is timed from its first step's
`on_train_batch_begin` to its last step's `on_train_batch_end` inside one `fit` call, so
`fit`'s per-call setup (callbacks, iterator) is excluded. Reported figures are medians over
repeats; ratios come from medians of the same run.

The peer's loss does less work than ours: `keras.distillation` masks no padding (it
averages CE and KL over pad positions too) and keeps no accuracy metric, while ours
computes masked CE, masked T^2 KL and a masked token accuracy every step.

Usage:
    python bench/train_throughput.py                       # full dims, prints a table
    python bench/train_throughput.py --output bench.json   # also writes the figures
    python bench/train_throughput.py --quick               # tiny dims, a smoke run
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

# Run as `python bench/train_throughput.py` from a checkout: import the package beside it.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import keras_hub  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import tf_distill  # noqa: E402

# Each case has its own train function, so TensorFlow's "N out of the last N calls
# triggered tf.function retracing" warning fires although nothing retraces.
tf.get_logger().setLevel("ERROR")

# The fixed dims of issue 4.
FULL_DIMS = {
    "vocabulary_size": 8000,
    "sequence_length": 32,
    "batch_size": 64,
    "num_heads": 4,
    "dropout": 0.1,
    "teacher": {"hidden_dim": 256, "num_layers": 4, "intermediate_dim": 1024},
    "student": {"hidden_dim": 128, "num_layers": 2, "intermediate_dim": 512},
}
# Tiny dims for a smoke run: every code path, in seconds.
QUICK_DIMS = {
    "vocabulary_size": 64,
    "sequence_length": 8,
    "batch_size": 4,
    "num_heads": 2,
    "dropout": 0.1,
    "teacher": {"hidden_dim": 16, "num_layers": 1, "intermediate_dim": 32},
    "student": {"hidden_dim": 8, "num_layers": 1, "intermediate_dim": 16},
}
NUM_BATCHES = 4  # distinct pre-built batches the dataset cycles through
START_ID = 1
ALPHA = 0.5
TEMPERATURE = 2.0
TABLE_HEADER = (
    f"{'case':<24} {'jit':>5} {'ms/step':>9} {'min':>8} {'max':>8} {'tokens/s':>10} {'params':>11}"
)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=None, help="timed steps per repeat")
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats per case")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps per case")
    parser.add_argument(
        "--jit",
        choices=("both", "off", "on"),
        default=None,
        help="which jit_compile settings to run (default: both; off with --quick)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="tiny dims, 2 steps, 1 repeat, no XLA: a smoke run of every case",
    )
    parser.add_argument("--output", default=None, help="write the figures as JSON here")
    parser.add_argument(
        "--cases",
        nargs="+",
        choices=CASES,
        default=list(CASES),
        metavar="CASE",
        help=f"cases to run (default: all of {', '.join(CASES)})",
    )
    args = parser.parse_args(argv)
    if args.jit is None:
        # XLA compilation takes most of a smoke run's time and says nothing about the script.
        args.jit = "off" if args.quick else "both"
    defaults = (2, 1, 1) if args.quick else (4, 5, 2)
    for name, default in zip(("steps", "repeats", "warmup"), defaults, strict=True):
        value = getattr(args, name)
        if value is None:
            setattr(args, name, default)
        elif value < 1:
            parser.error(f"--{name} must be at least 1. Received: {value}.")
    return args


# Data.


def make_dataset(dims, seed=0):
    """A repeated dataset of `NUM_BATCHES` fixed batches, and the mean real tokens per batch.

    Source and target rows get real lengths uniform in [L/2, L] and are padded with 0. The
    decoder input is the target shifted right behind a start token; labels are the target.
    """
    rng = np.random.default_rng(seed)
    vocab, length, batch = dims["vocabulary_size"], dims["sequence_length"], dims["batch_size"]
    shape = (NUM_BATCHES, batch, length)

    def padded_ids():
        ids = rng.integers(START_ID + 1, vocab, size=shape).astype("int32")
        lengths = rng.integers(length // 2, length + 1, size=shape[:2])
        ids[np.arange(length)[None, None, :] >= lengths[..., None]] = 0
        return ids

    source = padded_ids()
    labels = padded_ids()
    decoder_input = np.concatenate(
        [np.full(shape[:2] + (1,), START_ID, "int32"), labels[..., :-1]], axis=-1
    )
    decoder_input[labels == 0] = 0  # pads stay pads in the shifted input
    inputs = {"encoder_token_ids": source, "decoder_token_ids": decoder_input}
    dataset = tf.data.Dataset.from_tensor_slices((inputs, labels)).repeat()
    tokens_per_batch = float(np.count_nonzero(labels)) / NUM_BATCHES
    return dataset, tokens_per_batch


# Models.


def build_ours(dims, role):
    size = dims[role]
    return tf_distill.build_transformer(
        vocabulary_size=dims["vocabulary_size"],
        max_sequence_length=dims["sequence_length"],
        num_layers=size["num_layers"],
        num_heads=dims["num_heads"],
        hidden_dim=size["hidden_dim"],
        intermediate_dim=size["intermediate_dim"],
        dropout=dims["dropout"],
        name=f"ours_{role}",
    )


def build_peer(dims, role):
    """The same seq2seq shape from keras-hub layers: pre-norm, GELU, explicit pad masks."""
    size = dims[role]
    vocab, length, dropout = dims["vocabulary_size"], dims["sequence_length"], dims["dropout"]
    layer_args = {
        "intermediate_dim": size["intermediate_dim"],
        "num_heads": dims["num_heads"],
        "dropout": dropout,
        "activation": "gelu",
        "normalize_first": True,
    }
    encoder_ids = keras.Input(shape=(None,), dtype="int32", name="encoder_token_ids")
    decoder_ids = keras.Input(shape=(None,), dtype="int32", name="decoder_token_ids")
    encoder_mask = keras.ops.not_equal(encoder_ids, 0)
    decoder_mask = keras.ops.not_equal(decoder_ids, 0)

    x = keras_hub.layers.TokenAndPositionEmbedding(
        vocab, length, size["hidden_dim"], name="encoder_embedding"
    )(encoder_ids)
    x = keras.layers.Dropout(dropout)(x)
    for i in range(size["num_layers"]):
        x = keras_hub.layers.TransformerEncoder(**layer_args, name=f"encoder_layer_{i}")(
            x, padding_mask=encoder_mask
        )
    x = keras.layers.LayerNormalization(epsilon=1e-5, name="encoder_output_norm")(x)

    y = keras_hub.layers.TokenAndPositionEmbedding(
        vocab, length, size["hidden_dim"], name="decoder_embedding"
    )(decoder_ids)
    y = keras.layers.Dropout(dropout)(y)
    for i in range(size["num_layers"]):
        y = keras_hub.layers.TransformerDecoder(**layer_args, name=f"decoder_layer_{i}")(
            y, x, decoder_padding_mask=decoder_mask, encoder_padding_mask=encoder_mask
        )
    y = keras.layers.LayerNormalization(epsilon=1e-5, name="decoder_output_norm")(y)
    logits = keras.layers.Dense(vocab, dtype="float32", name="logits")(y)
    return keras.Model(
        inputs={"encoder_token_ids": encoder_ids, "decoder_token_ids": decoder_ids},
        outputs=logits,
        name=f"peer_{role}",
    )


def build_case(name, jit, dims):
    """Returns a compiled model whose `fit` step is the case's training step."""
    if name == "teacher training":
        model = tf_distill.Distiller(None, build_ours(dims, "teacher"), alpha=1.0)
        model.compile(optimizer="adam", jit_compile=jit)
    elif name == "student training":
        model = tf_distill.Distiller(None, build_ours(dims, "student"), alpha=1.0)
        model.compile(optimizer="adam", jit_compile=jit)
    elif name == "distillation":
        model = tf_distill.Distiller(
            build_ours(dims, "teacher"),
            build_ours(dims, "student"),
            alpha=ALPHA,
            temperature=TEMPERATURE,
        )
        model.compile(optimizer="adam", jit_compile=jit)
    elif name == "peer distillation":
        model = keras.distillation.Distiller(
            teacher=build_peer(dims, "teacher"),
            student=build_peer(dims, "student"),
            distillation_losses=keras.distillation.LogitsDistillation(
                temperature=TEMPERATURE, loss=keras.losses.KLDivergence()
            ),
            student_loss_weight=ALPHA,
        )
        model.compile(
            optimizer="adam",
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            jit_compile=jit,
        )
    else:
        raise ValueError(f"Unknown case {name!r}.")
    return model


CASES = ("teacher training", "student training", "distillation", "peer distillation")


# Timing.


class _StepTimer(keras.callbacks.Callback):
    """Records `time.perf_counter()` when the first step begins and when each step ends.

    Not `async_safe`, so Keras calls it synchronously around every step.
    """

    def __init__(self):
        super().__init__()
        self.begin = None
        self.ends = []

    def on_train_batch_begin(self, batch, logs=None):
        if self.begin is None:
            self.begin = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.ends.append(time.perf_counter())


def run_steps(model, dataset, steps):
    """Runs `steps` steps in one `fit`; returns their mean seconds (`fit`'s setup excluded)."""
    timer = _StepTimer()
    model.fit(
        dataset,
        steps_per_epoch=steps,
        epochs=1,
        verbose=0,
        shuffle=False,
        callbacks=[timer],
    )
    return (timer.ends[-1] - timer.begin) / steps


def count_params(model):
    student = getattr(model, "student", model)
    return int(sum(np.prod(v.shape) for v in student.trainable_variables))


def load_average():
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def benchmark(args):
    dims = QUICK_DIMS if args.quick else FULL_DIMS
    keras.utils.set_random_seed(0)
    dataset, tokens_per_batch = make_dataset(dims)
    load_before = load_average()
    started = time.perf_counter()

    jit_settings = {"both": (False, True), "off": (False,), "on": (True,)}[args.jit]
    cases = [(name, jit) for name in CASES if name in args.cases for jit in jit_settings]
    models, warmup_s = {}, {}
    for case in cases:
        t0 = time.perf_counter()
        model = models[case] = build_case(*case, dims)
        # Creating the optimizer's slots before the first trace saves a second trace (the
        # train function retraces once if its first call creates variables).
        model.optimizer.build(model.trainable_variables)
        # Trace (and XLA-compile) and settle the optimizer before anything is timed.
        model.fit(dataset, steps_per_epoch=args.warmup, epochs=1, verbose=0, shuffle=False)
        warmup_s[case] = time.perf_counter() - t0
        print(f"warmed up {case[0]} (jit={case[1]}) in {warmup_s[case]:.1f} s", flush=True)

    step_s = {case: [] for case in cases}
    for repeat in range(args.repeats):
        for case in cases:
            step_s[case].append(run_steps(models[case], dataset, args.steps))
        print(f"repeat {repeat + 1}/{args.repeats} done", flush=True)

    results = []
    for name, jit in cases:
        times = step_s[(name, jit)]
        median = statistics.median(times)
        results.append(
            {
                "case": name,
                "jit_compile": jit,
                "effective_jit_compile": bool(models[(name, jit)].jit_compile),
                "ms_per_step": 1000 * median,
                "ms_per_step_min": 1000 * min(times),
                "ms_per_step_max": 1000 * max(times),
                "ms_per_step_all": [1000 * t for t in times],
                "tokens_per_s": tokens_per_batch / median,
                "trainable_params": count_params(models[(name, jit)]),
                "warmup_s": warmup_s[(name, jit)],
            }
        )

    medians = {(r["case"], r["jit_compile"]): r["ms_per_step"] for r in results}
    ratios = {}
    for jit in jit_settings:
        tag = "jit" if jit else "no_jit"
        for other in ("student training", "peer distillation"):
            if ("distillation", jit) in medians and (other, jit) in medians:
                key = f"distillation/{other.replace(' ', '_')} ({tag})"
                ratios[key] = medians[("distillation", jit)] / medians[(other, jit)]
    if len(jit_settings) == 2:
        for name in CASES:
            if name in args.cases:
                ratios[f"{name} no_jit/jit"] = medians[(name, False)] / medians[(name, True)]

    return {
        "machine": {
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "gpus": len(tf.config.list_physical_devices("GPU")),
            "python": platform.python_version(),
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "keras_hub": keras_hub.__version__,
            "load_average_before": load_before,
            "load_average_after": load_average(),
        },
        "command": " ".join(["python", *sys.argv]),
        "dims": dims,
        "jit": args.jit,
        "steps": args.steps,
        "repeats": args.repeats,
        "warmup": args.warmup,
        "real_target_tokens_per_batch": tokens_per_batch,
        "total_s": time.perf_counter() - started,
        "results": results,
        "ratios": ratios,
    }


def print_report(report):
    dims = report["dims"]
    print()
    print(
        f"vocab {dims['vocabulary_size']}, length {dims['sequence_length']}, "
        f"batch {dims['batch_size']}, {report['real_target_tokens_per_batch']:.0f} real target "
        f"tokens/batch; medians of {report['repeats']} x {report['steps']} steps"
    )
    print(TABLE_HEADER)
    print("-" * len(TABLE_HEADER))
    for r in report["results"]:
        jit = "yes" if r["jit_compile"] else "no"
        if r["jit_compile"] and not r["effective_jit_compile"]:
            jit = "off!"  # Keras turned XLA off for this model
        print(
            f"{r['case']:<24} {jit:>5} {r['ms_per_step']:>9.1f} {r['ms_per_step_min']:>8.1f} "
            f"{r['ms_per_step_max']:>8.1f} {r['tokens_per_s']:>10.0f} {r['trainable_params']:>11,}"
        )
    print()
    for name, value in report["ratios"].items():
        print(f"{name:<44} {value:.2f}")
    machine = report["machine"]
    print(
        f"\nload average before {machine['load_average_before']}, after "
        f"{machine['load_average_after']}; total {report['total_s']:.0f} s"
    )


def main(argv=None):
    args = parse_args(argv)
    report = benchmark(args)
    print_report(report)
    if args.output:
        with open(args.output, "w") as f:
            json.dump(report, f, indent=2)
            f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
