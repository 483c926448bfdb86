"""Every Python block of README.md runs, in order, as written: the docs cannot drift."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def python_blocks(text):
    return re.findall(r"^```python\n(.*?)^```$", text, flags=re.S | re.M)


@pytest.mark.slow
def test_every_python_block_of_the_readme_runs(tmp_path):
    blocks = python_blocks((ROOT / "README.md").read_text(encoding="utf-8"))
    assert len(blocks) >= 5  # the own-code example, the cache, the runtime
    script = "\n\n".join(f"# README block {i + 1}\n{block}" for i, block in enumerate(blocks))
    (tmp_path / "readme_blocks.py").write_text(script, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "readme_blocks.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=1200,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    for name in ("teacher.keras", "student.keras", "best_student.keras"):
        assert (tmp_path / name).stat().st_size > 0, name
    export = tmp_path / "my_run" / "export"
    for name in ("student_int8.tflite", "manifest.json", "golden.jsonl"):
        assert (export / name).stat().st_size > 0, name
