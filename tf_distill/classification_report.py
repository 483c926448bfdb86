"""report.json, report.md, curves.png and confusion.png of a classification run."""

import os

from tf_distill import classification_metrics as metrics
from tf_distill import run_dir as run_dir_lib
from tf_distill.report import plot_curves

ROLES = ("teacher", "baseline", "student")


def _pct(value):
    return "-" if value is None else f"{100 * value:.2f}"


def markdown_table(report):
    results = report["results"]
    roles = [r for r in ROLES if r in results]
    names = report["data"]["label_names"]
    lines = ["| metric | " + " | ".join(roles) + " |", "|---|" + "---:|" * len(roles)]

    def row(label, fn):
        lines.append(f"| {label} | " + " | ".join(fn(results[r]) for r in roles) + " |")

    row("accuracy (%)", lambda r: _pct(r["accuracy"]))
    row("macro-F1 (%)", lambda r: _pct(r["macro_f1"]))
    for i, name in enumerate(names):
        row(f"F1 `{name}` (%)", lambda r, i=i: _pct(r["f1"][i]))
    row("parameters", lambda r: f"{r['parameters']:,}")
    row(
        "size on disk (bytes, `.keras`)", lambda r: "-" if r["bytes"] is None else f"{r['bytes']:,}"
    )
    row("latency, batch 1, Keras (ms)", lambda r: f"{r['latency_ms']:.2f}")
    return "\n".join(lines)


def ratios(report):
    results = report["results"]
    student, teacher = results.get("student"), results.get("teacher")
    if not student or not teacher:
        return {}
    return {
        "macro_f1_vs_teacher": round(student["macro_f1"] / max(teacher["macro_f1"], 1e-9), 4),
        "params_vs_teacher": round(student["parameters"] / teacher["parameters"], 4),
        "speedup_vs_teacher": round(teacher["latency_ms"] / max(student["latency_ms"], 1e-9), 2),
    }


def _comparison_lines(report):
    lines = []
    for name, found in report["comparisons"].items():
        a, b = name.split("_vs_")
        for key, label in (("macro_f1", "macro-F1"), ("accuracy", "accuracy")):
            c = found[key]
            lines.append(
                f"- {a} - {b}, {label}: {c['difference']:+.2f} points, 95% paired bootstrap "
                f"interval [{c['low']:+.2f}, {c['high']:+.2f}] ({metrics.verdict(c)})"
            )
    return lines


def write_report(run_dir, report):
    """Writes the run's report files; returns `report` with its ratios."""
    report["ratios"] = ratios(report)
    run_dir_lib.write_json(run_dir.report_json, report, indent=2)
    data, r = report["data"], report["ratios"]
    lines = [
        "# tf_distill report: classification",
        "",
        f"Data: {data['source']}, {data['examples']:,} texts, classes {data['label_names']} "
        f"(train {data['train']:,}, valid {data['valid']:,}, test {data['test']:,}; split "
        f"stratified by class). Test counts per class: {data['per_class']['test']}."
        + (
            f" The student also trained on a transfer set of {data['transfer']:,} unlabelled "
            "texts labelled by the teacher; the baseline did not."
            if data.get("transfer")
            else ""
        ),
        "",
        markdown_table(report),
        "",
        "## The student against the teacher",
        "",
    ]
    if r:
        lines += [
            f"- macro-F1: {r['macro_f1_vs_teacher']:.1%} of the teacher's",
            f"- parameters: {r['params_vs_teacher']:.1%} of the teacher's",
            f"- speed: {r['speedup_vs_teacher']:.2f}x the teacher's (batch-1 Keras latency)",
        ]
    lines += ["", "## Differences on the test set", ""] + _comparison_lines(report)
    lines += ["", "## Confusion matrices (rows: true class, columns: predicted)", ""]
    names = data["label_names"]
    for role in ROLES:
        if role not in report["results"]:
            continue
        lines += [f"{role}:", "", "| true \\ predicted | " + " | ".join(names) + " |"]
        lines.append("|---|" + "---:|" * len(names))
        for name, counts in zip(names, report["results"][role]["confusion"], strict=True):
            lines.append(f"| {name} | " + " | ".join(str(c) for c in counts) + " |")
        lines.append("")
    if report.get("samples"):
        lines += ["## Sample test messages", ""]
        for i, sample in enumerate(report["samples"]):
            said = ", ".join(f"{role}: {sample[role]}" for role in ROLES if role in sample)
            lines.append(f"{i + 1}. {sample['text']!r} (label {sample['label']}; {said})")
    export = report.get("export")
    if export:
        lines += ["", "## Export", ""]
        rounding = report.get("int8_rounding")
        if rounding:
            lines.append(
                f"The student's weights were rounded to the int8 grid before evaluation "
                f"({rounding['tensors']} tensors); its test labels stayed the same on "
                f"{rounding['same_label']:.1%} of test texts."
            )
        if "error" in export:
            lines.append(f"Export failed: {export['error']}")
        for name, size in export.get("files", {}).items():
            parity = export.get("parity", {}).get(name, {})
            agreement = parity.get("label_agreement")
            same = "" if agreement is None else f"; {agreement:.1%} of test labels as in Keras"
            lines.append(f"- {name}: {size:,} bytes{same}")
        if "int8_latency_ms" in export:
            lines.append(
                f"- int8 TFLite latency, batch 1, one thread: {export['int8_latency_ms']:.3f} ms"
            )
    lines += ["", "## Stage timings (s)", ""]
    lines += [f"- {name}: {seconds}" for name, seconds in report["timings_s"].items()]
    run_dir_lib.write_text(run_dir.report_md, "\n".join(lines) + "\n")
    tmp = run_dir.curves_png.with_name(f".curves.{os.getpid()}.png")
    plot_curves(report.get("curves", {}), tmp, score_name="macro-F1")
    os.replace(tmp, run_dir.curves_png)
    confusion = run_dir.path / "confusion.png"
    tmp = confusion.with_name(f".confusion.{os.getpid()}.png")
    plot_confusion(report, tmp)
    os.replace(tmp, confusion)
    return report


def plot_confusion(report, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    roles = [r for r in ROLES if r in report["results"]]
    names = report["data"]["label_names"]
    figure, axes = plt.subplots(1, len(roles), figsize=(4 * len(roles), 3.8), squeeze=False)
    for ax, role in zip(axes[0], roles, strict=True):
        matrix = np.asarray(report["results"][role]["confusion"])
        ax.imshow(matrix, cmap="Blues")
        for (i, j), count in np.ndenumerate(matrix):
            color = "white" if count > matrix.max() / 2 else "black"
            ax.text(j, i, str(count), ha="center", va="center", color=color, fontsize=9)
        ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(len(names)), names, fontsize=8)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"{role}: macro-F1 {100 * report['results'][role]['macro_f1']:.1f}")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
