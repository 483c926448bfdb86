"""`report.json`, `report.md` and `curves.png` for a finished run."""

import dataclasses
import os

from tf_distill import run_dir as run_dir_lib

FIXED_ROLES = ("teacher", "baseline", "student_ce", "student")
METRICS = (
    ("bleu", "BLEU (greedy)", "{:.2f}"),
    ("bleu_beam", "BLEU (beam)", "{:.2f}"),
    ("chrf", "chrF (greedy)", "{:.2f}"),
    ("token_accuracy", "token accuracy", "{:.4f}"),
    ("agreement_with_teacher", "same output as teacher", "{:.1%}"),
    ("params", "parameters", "{:,}"),
    ("size_bytes", "size on disk (bytes)", "{:,}"),
    ("latency_ms", "latency, batch 1 (ms)", "{:.1f}"),
    ("pairs", "training pairs", "{:,}"),
    ("epochs", "epochs", "{:,}"),
    ("steps", "optimizer steps", "{:,}"),
    ("precision", "training precision", "{}"),
)
ROLE_NOTES = {
    "teacher": "the teacher (or, with several, their ensemble: the mean of their probabilities)",
    "baseline": "the student architecture trained on the labelled pairs alone",
    "student_ce": "the student architecture trained on the teacher-labelled pairs with "
    "cross-entropy alone (no KL term): an ablation",
    "student": "the distilled student (CE + T^2 KL against the teacher)",
}


def _cell(value, fmt):
    return "n/a" if value is None else fmt.format(value)


def report_roles(report):
    """The evaluated models in table order: ensemble members, the teacher, the rest."""
    members = sorted(r for r in report if r.startswith("teacher_"))
    return members + [r for r in FIXED_ROLES if r in report]


def markdown_table(report):
    roles = report_roles(report)
    lines = [
        "| metric | " + " | ".join(roles) + " |",
        "|---|" + "---:|" * len(roles),
    ]
    for key, label, fmt in METRICS:
        lines.append(
            f"| {label} | " + " | ".join(_cell(report[r].get(key), fmt) for r in roles) + " |"
        )
    return "\n".join(lines)


def ratios(report):
    """The student's gains and losses against the teacher (and the baseline)."""
    teacher, student = report["teacher"], report["student"]
    out = {
        "bleu_vs_teacher": _ratio(student["bleu"], teacher["bleu"]),
        "params_vs_teacher": _ratio(student["params"], teacher["params"]),
        "size_vs_teacher": _ratio(student["size_bytes"], teacher["size_bytes"]),
        "speedup_vs_teacher": _ratio(teacher["latency_ms"], student["latency_ms"]),
    }
    members = [r for r in report if r.startswith("teacher_")]
    if members:
        out["params_vs_one_teacher"] = _ratio(
            student["params"], min(report[m]["params"] for m in members)
        )
    if "baseline" in report:
        out["bleu_gain_over_baseline"] = round(student["bleu"] - report["baseline"]["bleu"], 2)
        if student.get("bleu_beam") is not None and report["baseline"].get("bleu_beam") is not None:
            out["beam_bleu_gain_over_baseline"] = round(
                student["bleu_beam"] - report["baseline"]["bleu_beam"], 2
            )
    return out


def _transfer_note(data):
    count = data.get("transfer")
    if not count:
        return ""
    return (
        f" The student also trained on {count:,} source sentences without references, "
        "translated by the teacher (a transfer set, `distillation.transfer_size` / "
        "`transfer_path`); the baseline saw only the labelled training pairs."
    )


def _truncation_note(data, config):
    found = data.get("truncation")
    if not found:
        return ""
    return (
        f" training.max_sequence_length {config['training']['max_sequence_length']} cut "
        f"{found['share']:.1%} of the training pairs ({found['source_cut']:,} sources, "
        f"{found['target_cut']:,} targets)."
    )


def _significance_lines(report):
    """The paired bootstrap figures, and in words whether each difference is real."""
    found = report.get("significance") or {}
    if not found:
        return []
    lines = ["", "## Is the difference real? (paired bootstrap, 95%)", ""]
    for name, modes in found.items():
        other = name.removeprefix("student_vs_")
        for mode, r in modes.items():
            verdict = (
                ("significantly better" if r["delta"] > 0 else "significantly worse")
                if r["significant"]
                else "a tie (the difference is inside the noise)"
            )
            lines.append(
                f"- student vs {other}, {mode}: {r['delta']:+.2f} BLEU, 95% interval "
                f"[{r['low']:+.2f}, {r['high']:+.2f}], p = {r['p_value']:.4f}: {verdict}."
            )
    return lines


def _recipe_lines(report):
    lines = ["", "## The models", ""]
    lines += [f"- {role}: {ROLE_NOTES[role]}" for role in FIXED_ROLES if role in report]
    members = [r for r in report if r.startswith("teacher_")]
    if members:
        lines.append(f"- {', '.join(members)}: the ensemble's members, each trained alone")
    evaluated = report.get("evaluation")
    if evaluated:
        lines.append(
            f"- test: {evaluated['sources']:,} distinct source sentences scored against all "
            f"{evaluated['references']:,} of their references in the test split "
            f"({evaluated['multi_reference_sources']:,} have several)"
        )
    for role, a in (report.get("checkpoint_averaging") or {}).items():
        lines.append(
            f"- {role}: weights averaged over its last {a['epochs']} epochs, validation BLEU "
            f"{a['valid_bleu_last']:.2f} -> {a['valid_bleu_average']:.2f} "
            f"({'kept' if a['kept'] else 'not kept'})"
        )
    return lines


def _ratio(a, b):
    return None if not b else round(a / b, 4)


@dataclasses.dataclass
class RunResult:
    """Everything the report describes, as the pipeline's stages returned it."""

    results: dict  # role -> test metrics, plus "significance" and "evaluation"
    data: dict  # pairs and split sizes (and the transfer set's)
    config: dict  # the resolved config
    timings: dict  # stage -> seconds
    curves: dict  # role -> per-epoch curves
    export: dict | None = None  # files and parity, or {"error": ...}
    int8_rounding: dict | None = None
    checkpoint_averaging: dict | None = None  # role -> validation BLEU before / after
    sample_sources: list = dataclasses.field(default_factory=list)
    sample_references: list = dataclasses.field(default_factory=list)

    def to_dict(self):
        """The body of report.json (before the ratios are added)."""
        return {
            **self.results,
            "data": self.data,
            "config": self.config,
            "timings_s": self.timings,
            "curves": self.curves,
            "export": self.export,
            "int8_rounding": self.int8_rounding,
            "checkpoint_averaging": self.checkpoint_averaging or None,
        }


def _streaming_note(data):
    if not data.get("streaming"):
        return ""
    return (
        " Streamed (data.streaming): split by a hash of each source, the training pairs "
        "tokenized into TFRecord shards, the tokenizer learned from "
        f"{data['tokenizer_sample']:,} sampled training pairs."
    )


def write_report(run_dir, result):
    """Writes report.json, report.md and curves.png of `result` (a `RunResult`) into
    `run_dir` (a `tf_distill.run_dir.RunDirectory`); returns the report as a dict."""
    report = result.to_dict()
    report["ratios"] = ratios(report)
    run_dir_lib.write_json(run_dir.report_json, report, indent=2)
    r = report["ratios"]
    lines = [
        "# tf_distill report",
        "",
        f"Data: {report['data']['source']}, {report['data']['pairs']:,} pairs "
        f"(train {report['data']['train']:,}, valid {report['data']['valid']:,}, "
        f"test {report['data']['test']:,})."
        + _streaming_note(report["data"])
        + _transfer_note(report["data"])
        + _truncation_note(report["data"], report["config"]),
        "",
        markdown_table(report),
        "",
        "## The student against the teacher",
        "",
        f"- BLEU: {_cell(r['bleu_vs_teacher'], '{:.1%}')} of the teacher's",
        f"- parameters: {_cell(r['params_vs_teacher'], '{:.1%}')} of the teacher's",
        f"- size on disk: {_cell(r['size_vs_teacher'], '{:.1%}')} of the teacher's",
        f"- speed: {_cell(r['speedup_vs_teacher'], '{:.2f}')}x the teacher's (batch-1 latency)",
    ]
    if "bleu_gain_over_baseline" in r:
        lines.append(
            f"- BLEU over the no-teacher baseline: {r['bleu_gain_over_baseline']:+.2f} points"
            + (
                f" greedy, {r['beam_bleu_gain_over_baseline']:+.2f} with beam search"
                if "beam_bleu_gain_over_baseline" in r
                else ""
            )
        )
    if "params_vs_one_teacher" in r:
        lines.append(
            f"- parameters: {r['params_vs_one_teacher']:.1%} of one teacher of the ensemble"
        )
    lines += _significance_lines(report)
    lines += _recipe_lines(report)
    if result.sample_sources:
        lines += ["", "## Sample translations", ""]
        for i, source in enumerate(result.sample_sources):
            lines.append(f"{i + 1}. source: {source}")
            lines.append(f"   - reference: {result.sample_references[i]}")
            for role in report_roles(report):
                if report[role].get("samples"):
                    lines.append(f"   - {role}: {report[role]['samples'][i]}")
    export = report.get("export")
    if export:
        lines += ["", "## Export", ""]
        rounding = report.get("int8_rounding")
        if rounding:
            lines.append(
                f"The student's weights were rounded to the int8 grid before evaluation "
                f"({rounding['tensors']} tensors); its greedy output stayed the same on "
                f"{rounding['same_greedy_output']:.1%} of test sentences."
            )
        if "error" in export:
            lines.append(f"Export failed: {export['error']}")
        for name, size in export.get("files", {}).items():
            parity = export.get("parity", {}).get(name, {})
            agreement = parity.get("sequence_agreement", parity.get("label_agreement"))
            same = "" if agreement is None else f"; {agreement:.1%} of test outputs as in Keras"
            lines.append(f"- {name}: {size:,} bytes{same}")
    lines += ["", "## Stage timings (s)", ""]
    lines += [f"- {name}: {seconds}" for name, seconds in report["timings_s"].items()]
    run_dir_lib.write_text(run_dir.report_md, "\n".join(lines) + "\n")
    tmp = run_dir.curves_png.with_name(f".curves.{os.getpid()}.png")
    plot_curves(report.get("curves", {}), tmp)
    os.replace(tmp, run_dir.curves_png)
    return report


def plot_curves(curves, path, score_name="BLEU"):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    figure, (loss_ax, bleu_ax) = plt.subplots(1, 2, figsize=(10, 4))
    shown = [(role, values) for role, values in curves.items() if values.get("loss")]
    for i, (role, values) in enumerate(shown):
        color = f"C{i % 10}"  # one colour per model on both panels
        # Cross-entropy for every model (the student's total loss also holds the KL term);
        # runs (or resumed runs) recorded before the "ce" curve existed show the loss.
        whole = len(values.get("ce", ())) == len(values["loss"])
        train = values["ce"] if whole else values["loss"]
        valid = values["val_ce"] if whole else values["val_loss"]
        epochs = range(1, len(train) + 1)
        loss_ax.plot(epochs, train, color=color, label=f"{role} train")
        loss_ax.plot(epochs, valid, color=color, linestyle="--", label=f"{role} valid")
        bleu_ax.plot(epochs, values["val_bleu"], color=color, marker="o", label=role)
    loss_ax.set_title("cross-entropy per epoch (train solid, validation dashed)")
    bleu_ax.set_title(f"validation {score_name} per epoch")
    for ax in (loss_ax, bleu_ax):
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if shown:
            ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
