"""Ablation of feature distillation: logit KD against logit KD plus hidden-state,
attention or value-relation terms, and against a student initialised from the teacher.

Every variant is one `train.py` run of the same config with the same trained teacher
(`teacher.path`), no baseline and no export, in `<root>/<variant>`; a run that already
has its report is kept, a killed one is resumed (`--resume`). Then, in this process,
each variant's student decodes the test set (greedy and beam, as the pipeline's
evaluation does) and is compared with its reference variant by paired bootstrap
(`evaluation.paired_bootstrap`). Cost per step: the student stage's seconds over its
optimizer steps, from the run's own timings, and a paired timing of training steps of
every variant on the same batches in this process (`--time-steps`).

Usage:
    python bench/feature_ablation.py --config configs/small.json \\
        --teacher saved_models/small/teacher.keras --root runs/ablation_small \\
        --output docs/ablation_small.json
    python bench/feature_ablation.py ... --variants logit,attention --set training.epochs=2
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# name -> (overrides of the distillation section, reference variant or None)
VARIANTS = {
    "logit": ([], None),
    "hidden_mse": (["distillation.hidden_weight=0.05"], "logit"),
    "hidden_cosine": (
        ["distillation.hidden_weight=1", "distillation.hidden_loss=cosine"],
        "logit",
    ),
    "attention": (["distillation.attention_weight=1"], "logit"),
    # The same terms with the teacher's features run live on every batch instead of
    # cached (distillation.feature_cache_mb = 0), compared with the cached variant.
    "hidden_mse_live": (
        ["distillation.hidden_weight=0.05", "distillation.feature_cache_mb=0"],
        "hidden_mse",
    ),
    "attention_live": (
        ["distillation.attention_weight=1", "distillation.feature_cache_mb=0"],
        "attention",
    ),
    "value": (["distillation.value_weight=1"], "logit"),
    "hidden_attention": (
        [
            "distillation.hidden_weight=1",
            "distillation.hidden_loss=cosine",
            "distillation.attention_weight=1",
        ],
        "logit",
    ),
    # Logit KD with the student trained in bf16 compute (training.mixed_precision): its
    # quality effect, against float32.
    "bf16": (["training.mixed_precision=mixed_bfloat16"], "logit"),
    # A student as wide as the teacher of small.json / reviews.json (d128, 4 heads, FF
    # 512, untied), of the config's student depth: from random weights, and from the
    # teacher's layers.
    "wide_logit": (
        [
            "student.hidden_dim=128",
            "student.num_heads=4",
            "student.intermediate_dim=512",
            "student.tie_embeddings=false",
        ],
        None,
    ),
    "wide_init": (
        [
            "student.hidden_dim=128",
            "student.num_heads=4",
            "student.intermediate_dim=512",
            "student.tie_embeddings=false",
            "distillation.init_from_teacher=true",
        ],
        "wide_logit",
    ),
}


def run_variant(args, name):
    out = Path(args.root) / name
    if (out / "report.json").exists():
        print(f"{name}: done already ({out})", flush=True)
        return
    overrides = [
        f"teacher.path={Path(args.teacher).resolve()}",
        "distillation.baseline=false",
        "distillation.ce_only_ablation=false",
        "export.enabled=false",
        *args.set,
        *VARIANTS[name][0],
    ]
    command = [sys.executable, str(ROOT / "train.py"), "--config", args.config]
    command += ["--output-dir", str(out)]
    for override in overrides:
        command += ["--set", override]
    if (out / "config.json").exists():
        command.append("--resume")
    print(f"{name}: {' '.join(command)}", flush=True)
    start = time.time()
    with open(Path(args.root) / f"{name}.log", "a") as log:
        code = subprocess.call(command, stdout=log, stderr=subprocess.STDOUT)
    if code != 0:
        raise SystemExit(f"{name}: train.py exited {code}; see {args.root}/{name}.log")
    print(f"{name}: finished in {time.time() - start:.0f} s", flush=True)


def _run(args, name):
    from tf_distill import config as config_lib
    from tf_distill.run_dir import RunDirectory

    run = RunDirectory(Path(args.root) / name)
    config = config_lib.from_dict(json.loads(run.config_file.read_text()))
    return run, config


class Translation:
    """Test outputs (greedy and beam) and training batches of a translation run."""

    def __init__(self, config, run):
        from tf_distill.pipeline import data_stages

        self.tokenizers = data_stages.load_tokenizers(run)
        data = data_stages.prepare_data(config, with_transfer=False)
        self.sets = data_stages.make_datasets(config, data.splits, self.tokenizers)
        count = min(config.evaluation.max_sentences, len(self.sets.test_set.sources))
        self.test = self.sets.test_set.head(count)
        self.length = data_stages.decode_length(config)
        self.modes = {"greedy": 1, "beam": config.evaluation.beam_size}
        self.metric = "bleu"

    def outputs(self, student):
        from tf_distill import evaluation

        found = {}
        for mode, beam in self.modes.items():
            ids = evaluation.translate_ids(
                student,
                self.test.source_ids,
                self.length,
                beam_size=beam,
                **self.tokenizers.special,
            )
            found[mode] = self.tokenizers.target.detokenize(ids)
        return found

    def score(self, hypotheses):
        from tf_distill import evaluation

        return round(evaluation.corpus_scores(hypotheses, self.test.references)[0], 2)

    def compare(self, reference, other):
        from tf_distill import evaluation

        return evaluation.paired_bootstrap(reference, other, self.test.references)

    def batches(self, count):
        return list(self.sets.train.take(count))

    def sentences(self):
        return len(self.test.sources)


class Classification:
    """Test predictions and training batches of a classification run."""

    def __init__(self, config, run):
        from tf_distill import data as data_lib
        from tf_distill.pipeline import classification as cls

        self.cls = cls
        prepared = cls.prepare_data(config)
        tokenizer = data_lib.Tokenizer.load(run.tokenizer_dir, "source")
        self.tokenizers = cls.Tokenizers(tokenizer, None)
        length = config.training.max_sequence_length
        self.train, _, self.test = (
            cls.make_split(p, self.tokenizers, length) for p in prepared.splits
        )
        self.num_classes = len(prepared.label_names)
        self.modes = {"labels": None}
        self.metric = "macro_f1"
        self.batch_size = config.training.batch_size

    def outputs(self, student):
        logits = self.cls.predict_logits(student, {"token_ids": self.test.token_ids})
        return {"labels": logits.argmax(-1)}

    def score(self, predictions):
        from tf_distill import classification_metrics as metrics

        return round(100 * metrics.macro_f1(self.test.labels, predictions, self.num_classes), 2)

    def compare(self, reference, other):
        from tf_distill import classification_metrics as metrics

        found = metrics.paired_bootstrap(self.test.labels, other, reference, self.num_classes)
        return found["macro_f1"]

    def batches(self, count):
        n = self.batch_size
        return [
            (
                {"token_ids": self.train.token_ids[i * n : (i + 1) * n]},
                self.train.labels[i * n : (i + 1) * n],
            )
            for i in range(count)
        ]

    def sentences(self):
        return len(self.test.labels)


def _task(config, run):
    return (
        Classification(config, run) if config.task == "classification" else Translation(config, run)
    )


def evaluate(args, names):
    import keras

    outputs, rows = {}, {}
    task = None
    for name in names:
        run, config = _run(args, name)
        report = json.loads((run.path / "report.json").read_text())
        if task is None:
            task = _task(config, run)
        outputs[name] = task.outputs(keras.saving.load_model(run.model_file("student")))
        summary = json.loads(run.summary_file("student").read_text())["training"]
        seconds = report["timings_s"]["student"]
        rows[name] = {f"{task.metric}_{mode}": task.score(o) for mode, o in outputs[name].items()}
        rows[name].update(
            {
                "best_val": max(report["curves"]["student"]["val_bleu"]),
                "steps": summary["steps"],
                "epochs": summary["epochs"],
                "stage_s": seconds,
                "stage_ms_per_step": round(1000 * seconds / summary["steps"], 1),
                "overrides": VARIANTS[name][0],
            }
        )
        print(f"{name}: {rows[name]}", flush=True)
    for name in names:
        reference = VARIANTS[name][1]
        if reference in outputs:
            rows[name]["vs"] = reference
            rows[name]["bootstrap"] = {
                mode: task.compare(outputs[reference][mode], outputs[name][mode])
                for mode in task.modes
            }
    return rows, task


def time_steps(args, names, task, repeats):
    """Median ms per training step of each variant's Distiller (the teacher live), on the
    same batches, the variants taking turns within each repeat (machine drift hits all
    alike)."""
    import keras

    from tf_distill.pipeline import classification, data_stages, model_stages

    trainers = {}
    batches = task.batches(args.time_steps)
    for name in names:
        run, config = _run(args, name)
        teacher = keras.saving.load_model(config.teacher.path)
        if config.task == "classification":
            student = classification.build_student(
                config, "student", task.tokenizers, task.num_classes
            )
        else:
            student = model_stages.build_model(config, "student", data_stages.load_tokenizers(run))
        trainer = model_stages.distiller_for(config, teacher, student)
        trainer.compile(optimizer=keras.optimizers.Adam(1e-4))
        trainers[name] = trainer
        for batch in batches[:2]:  # trace
            trainer.train_on_batch(*batch)
    times = {name: [] for name in names}
    for repeat in range(repeats):
        order = names if repeat % 2 == 0 else names[::-1]
        for name in order:
            start = time.perf_counter()
            for batch in batches:
                trainers[name].train_on_batch(*batch)
            times[name].append(1000 * (time.perf_counter() - start) / len(batches))
    return {name: round(statistics.median(values), 1) for name, values in times.items()}


def markdown(result):
    """The figures of a result JSON as a Markdown table (both formats of this script's
    output: translation rows have bleu_greedy / bleu_beam, classification macro_f1_labels)."""
    lines = []
    rows = result["variants"]
    metrics = [k for k in next(iter(rows.values())) if k.startswith(("bleu", "macro_f1"))]
    metrics = [m for m in metrics if m != "report_bleu"]
    head = ["variant", *metrics, "vs", "difference [95% interval]", "best val", "steps"]
    head += ["stage ms/step", "paired ms/step"]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|---" * len(head) + "|")
    for name, row in rows.items():
        comparison = ""
        for mode, b in row.get("bootstrap", {}).items():
            delta = b.get("delta", b.get("difference"))
            comparison += f"{mode} {delta:+.2f} [{b['low']:+.2f}, {b['high']:+.2f}] "
        best = row.get("best_val", row.get("best_val_bleu"))
        cells = [name, *[f"{row[m]:.2f}" for m in metrics], row.get("vs", "-")]
        cells += [comparison.strip() or "-", f"{best:.2f}", f"{row['steps']:,}"]
        cells += [f"{row['stage_ms_per_step']:.0f}", str(row.get("paired_ms_per_step", "-"))]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config")
    parser.add_argument("--teacher", help="a trained teacher .keras file")
    parser.add_argument("--root", help="folder of the variants' runs")
    parser.add_argument("--variants", default="logit,hidden_mse,attention")
    parser.add_argument("--set", action="append", default=[], help="override for every run")
    parser.add_argument("--time-steps", type=int, default=10, help="timed batches (0: none)")
    parser.add_argument("--time-repeats", type=int, default=5)
    parser.add_argument("--output", default=None, help="write the figures as JSON here")
    parser.add_argument(
        "--render", default=None, help="print the Markdown table of a result JSON and stop"
    )
    args = parser.parse_args(argv)
    if args.render:
        print(markdown(json.loads(Path(args.render).read_text())))
        return
    if not (args.config and args.teacher and args.root):
        parser.error("--config, --teacher and --root are required (except with --render)")
    names = args.variants.split(",")
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        parser.error(f"unknown variants {unknown}; known: {sorted(VARIANTS)}")
    if not Path(args.teacher).is_file():
        parser.error(f"--teacher {args.teacher!r} is not a file")
    Path(args.root).mkdir(parents=True, exist_ok=True)
    for name in names:
        run_variant(args, name)
    rows, task = evaluate(args, names)
    timing = time_steps(args, names, task, args.time_repeats) if args.time_steps else {}
    for name, ms in timing.items():
        rows[name]["paired_ms_per_step"] = ms
    result = {
        "command": " ".join(["python", *sys.argv]),
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "cpus": os.cpu_count(),
        "test_examples": task.sentences(),
        "variants": rows,
    }
    text = json.dumps(result, indent=2)
    print(text)
    print(markdown(result))
    if args.output:
        Path(args.output).write_text(text + "\n")


if __name__ == "__main__":
    main()
