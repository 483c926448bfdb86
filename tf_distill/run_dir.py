"""The run directory: every path a run writes, the fresh / resume checks, the run lock and
atomic writes.

Nothing else in tf_distill builds a run path by hand. Everything is written under a
temporary name and moved into place with `os.replace`, so a run killed at any moment
leaves each file either whole or absent, never half-written. TensorFlow and Keras are not
imported here (a model is saved through its own `save` method), so the CLI can check a run
directory before TensorFlow loads.

Layout of a run directory:

    config.json                  the resolved config
    run.lock                     held while a process works in the directory
    tokenizer/                   source_vocab.txt, target_vocab.txt (+ metadata)
    <role>.keras                 each trained model (teacher, baseline, student_ce, student)
    state/<role>/                last finished epoch of a model in training (resume)
    state/<role>.summary.json    pairs, epochs, steps and averaging of a trained model
    logs/<role>/                 TensorBoard logs
    teacher_translations.tsv     sequence-level KD targets (+ .partial while in progress)
    transfer_set.tsv             the transfer set with the teacher's translations
    export/                      SavedModel, TFLite files, manifest, golden outputs
    report.json, report.md, curves.png
"""

import contextlib
import json
import os
import shutil
import socket
import zipfile
from pathlib import Path

from tf_distill.errors import ConfigError

LOCK_NAME = "run.lock"
NOTE_NAME = "tf_distill.json"  # what tf_distill adds inside a .keras archive
# Keys `--resume` may change: they shape only the evaluation and the export, which a
# resumed run redoes. Any other change would leave a report describing models it did not
# train.
RESUMABLE_CHANGES = (
    "export.",
    "evaluation.",
    "training.jit_compile",
    "training.distribution",
    "output_dir",
)


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def write_text(path, text):
    """Writes `text` to `path` atomically (a temporary file in the same folder, then
    `os.replace`)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_json(path, value, indent=None):
    write_text(path, json.dumps(value, indent=indent) + "\n")


def save_model(model, path, note=None):
    """`model.save(path)` atomically: Keras writes `<stem>.partial.keras`, which then
    replaces `path` (Keras insists on the `.keras` suffix). `note`, a JSON-able dict, is
    stored inside the archive as `tf_distill.json` (Keras ignores it when loading), so
    that it travels with the file: `read_note` gives it back."""
    path = Path(path)
    tmp = path.with_name(f"{path.stem}.partial.keras")
    model.save(tmp)
    if note is not None:
        with zipfile.ZipFile(tmp, "a") as archive:
            archive.writestr(NOTE_NAME, json.dumps(note))
    os.replace(tmp, path)


def read_note(path):
    """The note `save_model` stored in a `.keras` file, or None (no note, or no archive)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return json.loads(archive.read(NOTE_NAME))
    except (KeyError, OSError, ValueError, zipfile.BadZipFile):
        return None


def config_changes(recorded, new):
    """The dotted keys whose values differ between two config dicts."""
    changed = []
    for key in sorted(set(recorded) | set(new)):
        a, b = recorded.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            changed += [f"{key}.{k}" for k in config_changes(a, b)]
        elif a != b:
            changed.append(key)
    return changed


def replace_dir(tmp, final):
    """Moves the complete directory `tmp` to `final`. The previous `final` is first moved
    aside to `<final>.old` and deleted last, so a kill at any point leaves one whole copy
    (`read_dir` finds it)."""
    tmp, final = Path(tmp), Path(final)
    old = final.with_name(final.name + ".old")
    if final.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)


def read_dir(final):
    """`final`, after undoing a `replace_dir` killed between its two moves."""
    final = Path(final)
    old = final.with_name(final.name + ".old")
    if not final.exists() and old.exists():
        os.replace(old, final)
    return final


class RunDirectory:
    """The paths of one run in `path`, and what may be done there."""

    def __init__(self, path):
        self.path = Path(path)
        self._created = False
        self._before = set()  # what the directory held before this process wrote to it

    # Paths.

    @property
    def config_file(self):
        return self.path / "config.json"

    @property
    def tokenizer_dir(self):
        return self.path / "tokenizer"

    @property
    def export_dir(self):
        return self.path / "export"

    @property
    def report_json(self):
        return self.path / "report.json"

    @property
    def report_md(self):
        return self.path / "report.md"

    @property
    def curves_png(self):
        return self.path / "curves.png"

    @property
    def lock_file(self):
        return self.path / LOCK_NAME

    def model_file(self, role):
        return self.path / f"{role}.keras"

    def state_dir(self, role):
        return read_dir(self.path / "state" / role)

    def summary_file(self, role):
        return self.path / "state" / f"{role}.summary.json"

    def record_file(self, name):
        """`state/<name>.json`: what a stage measured once, kept for a resumed run."""
        return self.path / "state" / f"{name}.json"

    def logs_dir(self, role):
        return self.path / "logs" / role

    def shards_dir(self, name):
        """`shards/<name>`: a corpus in TFRecord shards (`tf_distill.data.shards`): "train"
        (the training pairs' token ids), "teacher_top_k" (with the teacher's outputs)."""
        return self.path / "shards" / name

    def translations_file(self, name):
        """`teacher_translations.tsv` or `transfer_set.tsv`."""
        return self.path / f"{name}.tsv"

    # Checks, made before TensorFlow loads.

    def holds_run(self):
        """Whether a run has trained here (a checkpoint or a report exists)."""
        state = self.path / "state"
        checkpoints = state.is_dir() and any(p.is_dir() for p in state.iterdir())
        return self.report_json.exists() or checkpoints

    def check_output_dir(self):
        """The directory is a directory, or can be made as one; nothing is written."""
        if self.path.exists() and not self.path.is_dir():
            raise ConfigError(
                f"output_dir {str(self.path)!r} is a file, not a directory. Choose another "
                "output_dir (or --output-dir)."
            )
        existing = self.path
        while not existing.exists():
            existing = existing.parent
        if not (existing.is_dir() and os.access(existing, os.W_OK | os.X_OK)):
            raise ConfigError(
                f"output_dir {str(self.path)!r} cannot be created or written: "
                f"{str(existing)!r} is not a writable directory. Choose another output_dir "
                "(or --output-dir)."
            )

    def check_start(self, resume):
        """A fresh run needs a directory without a run in it; `--resume` needs one with."""
        self.check_output_dir()
        if resume and not self.config_file.is_file():
            raise ConfigError(
                f"--resume: {str(self.path)!r} holds no run to resume (no config.json). "
                "Drop --resume to start a new run there, or point --output-dir at the run."
            )
        if not resume and self.holds_run():
            raise ConfigError(
                f"Output directory {str(self.path)!r} already holds a run. "
                "Pass --resume to continue it, or choose another --output-dir."
            )

    def check_resume_config(self, config_dict, defaults=None):
        """On `--resume`: the config may differ from the recorded one only in keys that do
        not change what was trained (`RESUMABLE_CHANGES`); a ConfigError lists the others.
        `defaults` (a config dict) fills keys that the recorded config predates."""
        try:
            recorded = json.loads(self.config_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise ConfigError(
                f"--resume: {str(self.config_file)!r} is unreadable, so the run cannot be "
                "checked. Start a new run in another --output-dir."
            ) from None
        for section, values in (defaults or {}).items():
            if isinstance(values, dict) and isinstance(recorded.get(section), dict):
                recorded[section] = {**values, **recorded[section]}
        changed = [
            key
            for key in config_changes(recorded, config_dict)
            if not key.startswith(RESUMABLE_CHANGES)
        ]
        if changed:
            raise ConfigError(
                f"--resume with a config that differs from the run's in {', '.join(changed)}: "
                "the models already trained would not match it. Resume with the recorded "
                f"config ({self.config_file}), or start a new run in another --output-dir."
            )

    def finished_run_files(self):
        """`(config.json, student.keras)` of a run that trained its student; a ConfigError
        naming what is missing otherwise."""
        if not self.config_file.is_file():
            raise ConfigError(
                f"{str(self.path)!r} holds no config.json. Pass a directory written by "
                "`tf-distill train`, e.g. --run-dir saved_models/small."
            )
        student = self.model_file("student")
        if not student.is_file():
            raise ConfigError(
                f"{str(self.path)!r} holds no student.keras: the run did not finish training "
                "its student. Finish it with `tf-distill train --config ... --resume` first."
            )
        return self.config_file, student

    # Creating, locking, cleaning up.

    def create(self):
        """Makes the directory (and its parents); a ConfigError if the system refuses."""
        self._created = not self.path.exists()
        # The outermost folder this call makes (parents included): what a failed fresh
        # run removes.
        self._made = self.path
        while not self._made.parent.exists():
            self._made = self._made.parent
        if not self._created and self.path.is_dir():
            self._before = {p.name for p in self.path.iterdir()}
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ConfigError(
                f"output_dir {str(self.path)!r} cannot be created ({error.strerror}). "
                "Choose another output_dir (or --output-dir)."
            ) from None

    @contextlib.contextmanager
    def lock(self):
        """Holds `run.lock` while the block runs: a second process working in the same
        directory is refused with a ConfigError. A lock left by a killed process (its pid
        no longer runs on this host) is taken over."""
        owner = f"{os.getpid()} {socket.gethostname()}\n"
        while True:
            try:
                fd = os.open(self.lock_file, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
                break
            except FileExistsError:
                if not self._stale_lock():
                    raise ConfigError(
                        f"Another process ({self._lock_owner()}) is working in "
                        f"{str(self.path)!r}. Wait for it to finish (or stop it), or choose "
                        "another --output-dir."
                    ) from None
                self.lock_file.unlink(missing_ok=True)
        with os.fdopen(fd, "w") as f:
            f.write(owner)
        try:
            yield self
        finally:
            self.lock_file.unlink(missing_ok=True)

    def _lock_owner(self):
        try:
            return "pid " + " on ".join(self.lock_file.read_text().split())
        except OSError:
            return "unknown"

    def _stale_lock(self):
        try:
            pid, host = self.lock_file.read_text().split()
            pid = int(pid)
        except (OSError, ValueError):
            return True  # unreadable or half-written: its writer died mid-write
        return host == socket.gethostname() and not _pid_alive(pid)

    def remove_fresh_run(self):
        """Deletes what a failed fresh run wrote: the directory itself if this run made it,
        else every entry that was not there before `create` (the lock stays: the caller
        releases it)."""
        if self._created:
            shutil.rmtree(self._made, ignore_errors=True)
            return
        for path in self.path.iterdir():
            if path.name == LOCK_NAME or path.name in self._before:
                continue
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
