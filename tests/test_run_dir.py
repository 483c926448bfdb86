"""The run directory: paths, fresh / resume checks, the lock, atomic writes."""

import os
import subprocess
import sys

import pytest

from tf_distill import run_dir as rd
from tf_distill.errors import ConfigError


def test_finished_run_files_name_what_is_missing(tmp_path):
    run = rd.RunDirectory(tmp_path)
    with pytest.raises(ConfigError, match="holds no config.json"):
        run.finished_run_files()
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ConfigError, match="holds no student.keras.*--resume"):
        run.finished_run_files()
    (tmp_path / "student.keras").write_bytes(b"")
    assert run.finished_run_files() == (tmp_path / "config.json", tmp_path / "student.keras")


def test_check_start_fresh_and_resume(tmp_path):
    run = rd.RunDirectory(tmp_path / "run")
    run.check_start(resume=False)  # nothing there: a fresh run may start
    with pytest.raises(ConfigError, match="holds no run to resume"):
        run.check_start(resume=True)
    run.create()
    run.config_file.write_text("{}")
    run.check_start(resume=False)  # a config alone (a run that failed early) is no run
    (run.path / "state").mkdir()
    run.record_file("timings").write_text("{}")
    run.check_start(resume=False)  # stage timings alone: nothing was trained yet
    (run.path / "state" / "teacher").mkdir()  # a checkpoint
    with pytest.raises(ConfigError, match="already holds a run.*--resume"):
        run.check_start(resume=False)
    run.check_start(resume=True)


def test_output_dir_that_is_a_file(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(ConfigError, match="is a file, not a directory"):
        rd.RunDirectory(tmp_path / "f").check_output_dir()


def test_write_text_replaces_whole_files_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "a.json"
    rd.write_json(path, {"x": 1})
    rd.write_text(path, "second\n")
    assert path.read_text() == "second\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]


def test_replace_dir_keeps_one_whole_copy_at_every_step(tmp_path):
    final = tmp_path / "state"
    for epoch in (1, 2):
        tmp = tmp_path / "state.tmp"
        tmp.mkdir()
        (tmp / "epoch").write_text(str(epoch))
        rd.replace_dir(tmp, final)
        assert (final / "epoch").read_text() == str(epoch)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state"]
    # A kill between replace_dir's two moves leaves only `state.old`: read_dir restores it.
    os.replace(final, tmp_path / "state.old")
    assert (rd.read_dir(final) / "epoch").read_text() == "2"
    assert rd.RunDirectory(tmp_path).state_dir("x") == tmp_path / "state" / "x"


def test_lock_refuses_a_second_process_and_takes_over_a_dead_ones(tmp_path):
    run = rd.RunDirectory(tmp_path)
    with run.lock():
        assert run.lock_file.exists()
        # Another process working here (this one: its pid is alive) is refused.
        with pytest.raises(ConfigError, match="Another process .* is working in"):
            with rd.RunDirectory(tmp_path).lock():
                pass
    assert not run.lock_file.exists()
    # A lock left by a process that no longer runs is stale: taken over.
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    import socket

    run.lock_file.write_text(f"{dead.stdout.strip()} {socket.gethostname()}\n")
    with run.lock():
        assert run.lock_file.read_text().split()[0] == str(os.getpid())


def test_remove_fresh_run(tmp_path):
    made = rd.RunDirectory(tmp_path / "new" / "run")
    made.create()
    (made.path / "config.json").write_text("{}")
    made.remove_fresh_run()
    assert not made.path.exists()  # the run made it: it goes
    existing = rd.RunDirectory(tmp_path)
    (tmp_path / "notes.txt").write_text("the user's")
    existing.create()
    (tmp_path / "tokenizer").mkdir()
    (tmp_path / "config.json").write_text("{}")
    existing.remove_fresh_run()
    # What the run wrote goes; what was there before stays, as it was.
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]
    assert (tmp_path / "notes.txt").read_text() == "the user's"


def test_resume_refuses_a_config_that_changes_what_was_trained(tmp_path):
    run = rd.RunDirectory(tmp_path)
    recorded = {"training": {"epochs": 3, "jit_compile": "auto"}, "evaluation": {"beam_size": 4}}
    rd.write_json(run.config_file, recorded)
    same = {"training": {"epochs": 3, "jit_compile": "auto"}, "evaluation": {"beam_size": 4}}
    run.check_resume_config(same)
    # Evaluation, export and jit_compile may change: a resumed run redoes what they shape.
    run.check_resume_config(
        {"training": {"epochs": 3, "jit_compile": False}, "evaluation": {"beam_size": 1}}
    )
    with pytest.raises(ConfigError, match=r"differs from the run's in training\.epochs:"):
        run.check_resume_config({**same, "training": {"epochs": 5, "jit_compile": "auto"}})
    # A key the recorded config predates counts as its default.
    newer = {**same, "training": {**same["training"], "seed": 0}}
    run.check_resume_config(newer, defaults={"training": {"seed": 0}})
    with pytest.raises(ConfigError, match=r"training\.seed"):
        run.check_resume_config(
            {**same, "training": {**same["training"], "seed": 1}}, {"training": {"seed": 0}}
        )


def test_notes_travel_inside_keras_files(tmp_path):
    import keras

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    path = tmp_path / "m.keras"
    rd.save_model(model, path, note={"target_tokenizer": "abc"})
    assert rd.read_note(path) == {"target_tokenizer": "abc"}
    assert keras.saving.load_model(path).count_params() == 3  # Keras ignores the note
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.keras"]
    (tmp_path / "plain.txt").write_text("x")
    assert rd.read_note(tmp_path / "plain.txt") is None


def test_resume_with_an_unreadable_recorded_config_is_refused(tmp_path):
    run = rd.RunDirectory(tmp_path)
    run.config_file.write_text("{not json")
    with pytest.raises(ConfigError, match="is unreadable, so the run cannot be checked"):
        run.check_resume_config({})


def test_a_half_written_lock_is_taken_over(tmp_path):
    run = rd.RunDirectory(tmp_path)
    run.lock_file.write_text("")  # its writer died between creating and writing it
    with run.lock():
        assert run.lock_file.read_text().split()[0] == str(os.getpid())
    assert not run.lock_file.exists()
