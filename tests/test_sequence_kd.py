"""Sequence-level KD: the teacher's translations of the training sources, in order."""

import logging

import keras
import numpy as np
import pytest

from tests.helpers import perturb_weights
from tf_distill.data import Tokenizer, generate_corpus
from tf_distill.decoding import beam_search, greedy_decode
from tf_distill.models import build_transformer
from tf_distill.sequence_kd import teacher_translations

MAX_SEQUENCE_LENGTH = 24
MAX_LENGTH = 10


@pytest.fixture(scope="module")
def setup():
    pairs = generate_corpus(200, seed=11)
    tokenizer = Tokenizer.train([s for s, _ in pairs] + [t for _, t in pairs], 200)
    keras.utils.set_random_seed(5)
    teacher = build_transformer(
        vocabulary_size=tokenizer.vocabulary_size,
        max_sequence_length=MAX_SEQUENCE_LENGTH,
        num_layers=1,
        num_heads=2,
        hidden_dim=16,
        intermediate_dim=32,
        dropout=0.0,
    )
    perturb_weights(teacher, 0.3, seed=0)  # vary the outputs across sources
    return [s for s, _ in pairs[:37]], tokenizer, teacher


def one_by_one(sources, tokenizer, teacher):
    """Reference: each source decoded alone, at its own length."""
    out = []
    for row in tokenizer.tokenize(sources):
        ids = np.array([list(row)[:MAX_SEQUENCE_LENGTH]], np.int32)
        decoded = greedy_decode(teacher, ids, MAX_LENGTH, start_id=2, end_id=3, pad_id=0)
        out.append(tokenizer.detokenize(np.asarray(decoded))[0])
    return out


def test_translations_match_decoding_each_source_alone(setup, caplog):
    sources, tokenizer, teacher = setup
    caplog.set_level(logging.INFO, logger="tf_distill")
    got = teacher_translations(
        teacher,
        sources,
        tokenizer,
        tokenizer,
        MAX_SEQUENCE_LENGTH,
        MAX_LENGTH,
        batch_size=8,  # several length-sorted batches, the last one partial
    )
    lines = caplog.messages
    expected = one_by_one(sources, tokenizer, teacher)
    assert got == expected
    assert len(set(expected)) > 3  # outputs vary, so a wrong order would show
    assert lines[-1].startswith(f"teacher translations: {len(sources)}/{len(sources)},")


def test_batch_size_must_be_positive(setup):
    sources, tokenizer, teacher = setup
    with pytest.raises(ValueError, match="`batch_size` must be positive"):
        teacher_translations(teacher, sources, tokenizer, tokenizer, 8, 4, batch_size=0)


def test_beam_translations_match_beam_search_of_each_source_alone(setup):
    sources, tokenizer, teacher = setup
    got = teacher_translations(
        teacher, sources, tokenizer, tokenizer, MAX_SEQUENCE_LENGTH, MAX_LENGTH, 8, beam_size=3
    )
    expected = []
    for row in tokenizer.tokenize(sources):
        ids = np.array([list(row)[:MAX_SEQUENCE_LENGTH]], np.int32)
        expected.append(
            tokenizer.detokenize(np.asarray(beam_search(teacher, ids, MAX_LENGTH, 3)))[0]
        )
    assert got == expected
    assert got != one_by_one(sources, tokenizer, teacher)  # beam differs from greedy somewhere


def test_progress_file_resumes_without_decoding_again(setup, tmp_path):
    sources, tokenizer, teacher = setup
    args = (teacher, sources, tokenizer, tokenizer, MAX_SEQUENCE_LENGTH, MAX_LENGTH, 8)
    path = tmp_path / "progress.tsv"
    full = teacher_translations(*args, progress_path=path)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert sorted(int(line.split("\t")[0]) for line in lines) == list(range(len(sources)))
    # A killed call: the first 12 rows written, one of them marked, and a torn last line.
    kept = lines[:12]
    marked = int(kept[0].split("\t")[0])
    kept[0] = f"{marked}\tkept from the file"
    path.write_text("\n".join(kept) + "\n" + lines[12][:3], encoding="utf-8")
    resumed = teacher_translations(*args, progress_path=path)
    assert resumed[marked] == "kept from the file"
    assert [t for i, t in enumerate(resumed) if i != marked] == [
        t for i, t in enumerate(full) if i != marked
    ]
    # The file again holds one whole line per row, the torn one replaced.
    again = path.read_text(encoding="utf-8").splitlines()
    assert sorted(int(line.split("\t")[0]) for line in again) == list(range(len(sources)))
