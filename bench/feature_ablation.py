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
    "value": (["distillation.value_weight=1"], "logit"),
    "hidden_attention": (
        [
            "distillation.hidden_weight=1",
            "distillation.hidden_loss=cosine",
            "distillation.attention_weight=1",
        ],
        "logit",
    ),
    # A student as wide as small.json's teacher (d128, 4 heads, FF 512, untied), 2 encoder
    # and 1 decoder layers: from random weights, and from the teacher's layers.
    "wide_logit": (
        [
            "student.hidden_dim=128",
            "student.intermediate_dim=512",
            "student.tie_embeddings=false",
        ],
        None,
    ),
    "wide_init": (
        [
            "student.hidden_dim=128",
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


def evaluate(args, names):
    import keras

    from tf_distill import config as config_lib
    from tf_distill import evaluation
    from tf_distill.pipeline import data_stages
    from tf_distill.run_dir import RunDirectory

    outputs, rows = {}, {}
    test = None
    for name in names:
        run = RunDirectory(Path(args.root) / name)
        config = config_lib.from_dict(json.loads(run.config_file.read_text()))
        report = json.loads((run.path / "report.json").read_text())
        tokenizers = data_stages.load_tokenizers(run)
        if test is None:
            data = data_stages.prepare_data(config, with_transfer=False)
            sets = data_stages.make_datasets(config, data.splits, tokenizers)
            count = min(config.evaluation.max_sentences, len(sets.test_set.sources))
            test = sets.test_set.head(count)
        student = keras.saving.load_model(run.model_file("student"))
        length = data_stages.decode_length(config)
        outputs[name] = {}
        for mode, beam in (("greedy", 1), ("beam", config.evaluation.beam_size)):
            ids = evaluation.translate_ids(
                student, test.source_ids, length, beam_size=beam, **tokenizers.special
            )
            outputs[name][mode] = tokenizers.target.detokenize(ids)
        bleu, _ = evaluation.corpus_scores(outputs[name]["greedy"], test.references)
        bleu_beam, _ = evaluation.corpus_scores(outputs[name]["beam"], test.references)
        student_report = report["student"]
        curves = report["curves"]["student"]
        rows[name] = {
            "bleu": round(bleu, 2),
            "bleu_beam": round(bleu_beam, 2),
            "report_bleu": student_report["bleu"],
            "best_val_bleu": max(curves["val_bleu"]),
            "params": student_report["params"],
            "steps": student_report["steps"],
            "epochs": student_report["epochs"],
            "stage_s": report["timings_s"]["student"],
            "stage_ms_per_step": round(
                1000 * report["timings_s"]["student"] / student_report["steps"], 1
            ),
            "overrides": VARIANTS[name][0],
        }
        print(f"{name}: {rows[name]}", flush=True)
    for name in names:
        reference = VARIANTS[name][1]
        if reference in outputs:
            rows[name]["vs"] = reference
            rows[name]["bootstrap"] = {
                mode: evaluation.paired_bootstrap(
                    outputs[reference][mode], outputs[name][mode], test.references
                )
                for mode in ("greedy", "beam")
            }
    return rows, len(test.sources)


def time_steps(args, names, repeats):
    """Median ms per training step of each variant's Distiller, on the same batches, the
    variants taking turns within each repeat (machine drift hits all alike)."""
    import keras

    from tf_distill import config as config_lib
    from tf_distill.pipeline import data_stages, model_stages
    from tf_distill.run_dir import RunDirectory

    trainers, batches = {}, None
    for name in names:
        run = RunDirectory(Path(args.root) / name)
        config = config_lib.from_dict(json.loads(run.config_file.read_text()))
        tokenizers = data_stages.load_tokenizers(run)
        if batches is None:
            data = data_stages.prepare_data(config, with_transfer=False)
            sets = data_stages.make_datasets(config, data.splits, tokenizers)
            batches = list(sets.train.take(args.time_steps))
        teacher = keras.saving.load_model(config.teacher.path)
        student = model_stages.build_model(config, "student", tokenizers)
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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--teacher", required=True, help="a trained teacher .keras file")
    parser.add_argument("--root", required=True, help="folder of the variants' runs")
    parser.add_argument("--variants", default="logit,hidden_mse,attention")
    parser.add_argument("--set", action="append", default=[], help="override for every run")
    parser.add_argument("--time-steps", type=int, default=10, help="timed batches (0: none)")
    parser.add_argument("--time-repeats", type=int, default=5)
    parser.add_argument("--output", default=None, help="write the figures as JSON here")
    args = parser.parse_args(argv)
    names = args.variants.split(",")
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        parser.error(f"unknown variants {unknown}; known: {sorted(VARIANTS)}")
    if not Path(args.teacher).is_file():
        parser.error(f"--teacher {args.teacher!r} is not a file")
    Path(args.root).mkdir(parents=True, exist_ok=True)
    for name in names:
        run_variant(args, name)
    rows, sentences = evaluate(args, names)
    timing = time_steps(args, names, args.time_repeats) if args.time_steps else {}
    for name, ms in timing.items():
        rows[name]["paired_ms_per_step"] = ms
    result = {
        "command": " ".join(["python", *sys.argv]),
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "cpus": os.cpu_count(),
        "test_sentences": sentences,
        "variants": rows,
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.output:
        Path(args.output).write_text(text + "\n")


if __name__ == "__main__":
    main()
