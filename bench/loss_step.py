"""The distillation loss alone: its value and gradient with respect to the student's logits.

At issue 4's dims (batch 64, length 32, vocabulary 8000) the (B, T, V) logits are 16M
floats, and everything done to them (softmaxes, the KL, the accuracy's argmax, the
gradient) is memory-bound work that costs about as much as the student's whole forward
and backward pass. This script times that part on its own, for three forms of the same
objective `alpha * CE + (1 - alpha) * T^2 * KL`:

- `textbook`     masked CE (`losses.cross_entropy_per_token`), masked T^2 KL from two
                 `log_softmax`s (`losses.kl_per_token`) and an argmax token accuracy,
                 differentiated by TensorFlow;
- `token_terms`  what `Distiller` runs: `losses.token_terms`, the same three terms with
                 the gradient written out (under XLA from one shared max over the logits,
                 without it from the fused sparse softmax kernel);
- `peer`         what `keras.distillation` computes: unmasked sparse CE plus
                 `LogitsDistillation(loss=KLDivergence())`, no accuracy.

Method: fixed random logits (scale 3) and labels with padding, one `tf.function` per form
(XLA on, off, or both), warmed up, then timed round-robin; each repeat times `--steps`
calls and waits for the last gradient. Medians over repeats; ratios from the same run.

Usage:
    python bench/loss_step.py                      # full dims, both jit settings
    python bench/loss_step.py --quick              # tiny dims, a smoke run
    python bench/loss_step.py --output loss.json   # also write the figures
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
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tf_distill import losses  # noqa: E402

ALPHA = 0.5
TEMPERATURE = 2.0
FORMS = ("textbook", "token_terms", "peer")


def make_batch(batch, length, vocab, seed=0):
    rng = np.random.default_rng(seed)
    student = rng.normal(size=(batch, length, vocab)).astype("float32") * 3
    teacher = rng.normal(size=(batch, length, vocab)).astype("float32") * 3
    labels = rng.integers(1, vocab, size=(batch, length))
    lengths = rng.integers(length // 2, length + 1, size=batch)
    labels[np.arange(length)[None, :] >= lengths[:, None]] = 0
    return tf.constant(student), tf.constant(teacher), tf.constant(labels.astype("int32"))


def textbook(student, teacher, labels, xla):
    del xla  # one form only
    mask = losses.token_mask(labels, student)
    ce = losses.cross_entropy_per_token(labels, student)
    kd = losses.kl_per_token(teacher, student, TEMPERATURE)
    predicted = tf.argmax(student, axis=-1, output_type=tf.int32)
    correct = tf.reduce_sum(tf.cast(tf.equal(predicted, labels), tf.float32) * mask)
    count = tf.reduce_sum(mask)
    loss = (ALPHA * tf.reduce_sum(ce * mask) + (1 - ALPHA) * tf.reduce_sum(kd * mask)) / count
    return loss, correct


def token_terms(student, teacher, labels, xla):
    # As Distiller does: the XLA form under jit_compile, the kernel form otherwise.
    mask = losses.token_mask(labels, student)
    ce, kd, correct = losses.token_terms(labels, student, teacher, TEMPERATURE, xla=xla)
    count = tf.reduce_sum(mask)
    loss = (ALPHA * tf.reduce_sum(ce * mask) + (1 - ALPHA) * tf.reduce_sum(kd * mask)) / count
    return loss, tf.reduce_sum(correct * mask)


def peer(student, teacher, labels, xla):
    del xla  # one form only
    ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(labels, student)
    kd = keras.distillation.LogitsDistillation(
        temperature=TEMPERATURE, loss=keras.losses.KLDivergence()
    ).compute_loss(teacher, student)
    return ALPHA * ce + (1 - ALPHA) * kd, tf.zeros(())


def make_step(form, jit):
    def step(student, teacher, labels):
        with tf.GradientTape() as tape:
            tape.watch(student)
            loss, correct = form(student, teacher, labels, xla=jit)
        return tape.gradient(loss, student), loss, correct

    return tf.function(step, jit_compile=jit)


def benchmark(args):
    dims = (4, 8, 64) if args.quick else (64, 32, 8000)
    batch = make_batch(*dims)
    jits = {"both": (False, True), "off": (False,), "on": (True,)}[args.jit]
    cases = {(name, jit): make_step(globals()[name], jit) for jit in jits for name in FORMS}
    gradients = {}
    for (name, jit), step in cases.items():
        gradient, loss, _ = step(*batch)  # trace and compile
        gradients[(name, jit)] = (gradient.numpy(), float(loss))
    # Same objective: the masked forms agree exactly in value and gradient.
    for jit in jits:
        (g1, l1), (g2, l2) = gradients[("textbook", jit)], gradients[("token_terms", jit)]
        if not (np.allclose(g1, g2, atol=1e-6) and np.isclose(l1, l2, rtol=1e-5)):
            raise SystemExit(f"token_terms disagrees with textbook (jit={jit}): {l1} vs {l2}")

    times = {case: [] for case in cases}
    for repeat in range(args.repeats):
        for case, step in cases.items():
            start = time.perf_counter()
            for _ in range(args.steps):
                gradient, _, _ = step(*batch)
            gradient.numpy()
            times[case].append((time.perf_counter() - start) / args.steps)
        print(f"repeat {repeat + 1}/{args.repeats} done", flush=True)

    results = [
        {
            "form": name,
            "jit_compile": jit,
            "ms": 1000 * statistics.median(times[(name, jit)]),
            "ms_all": [1000 * t for t in times[(name, jit)]],
        }
        for name, jit in cases
    ]
    medians = {(r["form"], r["jit_compile"]): r["ms"] for r in results}
    ratios = {}
    for jit in jits:
        tag = "jit" if jit else "no_jit"
        for other in ("textbook", "peer"):
            ratios[f"token_terms/{other} ({tag})"] = (
                medians[("token_terms", jit)] / medians[(other, jit)]
            )
    return {
        "machine": {
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
        },
        "command": " ".join(["python", *sys.argv]),
        "dims": {"batch": dims[0], "length": dims[1], "vocabulary": dims[2]},
        "steps": args.steps,
        "repeats": args.repeats,
        "results": results,
        "ratios": ratios,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=5, help="timed calls per repeat")
    parser.add_argument("--repeats", type=int, default=9, help="timed repeats per form")
    parser.add_argument("--jit", choices=("both", "off", "on"), default="both")
    parser.add_argument("--quick", action="store_true", help="tiny dims, 1 repeat of 1 call")
    parser.add_argument("--output", default=None, help="write the figures as JSON here")
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.repeats = 1, 1
    if args.steps < 1 or args.repeats < 1:
        parser.error("--steps and --repeats must be at least 1.")
    report = benchmark(args)
    print(f"\n{'form':<12} {'jit':>4} {'ms (median)':>12} {'min':>8} {'max':>8}")
    for r in report["results"]:
        print(
            f"{r['form']:<12} {'yes' if r['jit_compile'] else 'no':>4} {r['ms']:>12.1f} "
            f"{min(r['ms_all']):>8.1f} {max(r['ms_all']):>8.1f}"
        )
    for key, value in report["ratios"].items():
        print(f"{key}: {value:.2f}")
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
