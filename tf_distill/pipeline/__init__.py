"""The main job of `tf-distill train`, as explicit stages.

- `data_stages`: pairs, splits, tokenizers, datasets, evaluation sentence sets.
- `model_stages`: teachers, the student trained three ways, the teacher's translations
  and cached logits.
- `final_stages`: int8 rounding, evaluation, export.
- `run`: the orchestrator (`run_pipeline`) and `export_run`.
"""

from tf_distill.pipeline.data_stages import load_pairs
from tf_distill.pipeline.run import export_run, run_pipeline

__all__ = ["export_run", "load_pairs", "run_pipeline"]
