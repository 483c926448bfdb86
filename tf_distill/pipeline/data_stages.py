"""The pipeline's data stages: pairs -> splits (+ transfer sources) -> tokenizers ->
tf.data datasets and the fixed sentence sets that evaluation decodes."""

import dataclasses
import logging
import shutil

import numpy as np

from tf_distill import data as data_lib
from tf_distill import evaluation, transfer
from tf_distill.errors import ConfigError
from tf_distill.run_dir import read_dir, replace_dir

_LOG = logging.getLogger(__name__)


def load_pairs(config):
    """All (source, target) pairs named by `config.data`."""
    d = config.data
    if d.source == "synthetic":
        pairs = data_lib.generate_corpus(d.num_pairs, seed=d.seed, ambiguity=d.ambiguity)
    elif d.source == "tsv":
        pairs = data_lib.read_tsv(
            d.path, source_column=d.source_column, target_column=d.target_column, reverse=d.reverse
        )
    elif d.source == "parallel":
        pairs = data_lib.read_parallel(d.path, d.target_path)
        if d.reverse:
            pairs = [(t, s) for s, t in pairs]
    else:
        pairs = data_lib.read_tfds(d.tfds_name, data_dir=d.data_dir, download=d.download)
        if d.reverse:
            pairs = [(t, s) for s, t in pairs]
    if d.max_sources is not None:
        sources = sorted({s for s, _ in pairs})
        rng = np.random.default_rng(d.seed)
        count = int(d.max_sources) if d.max_sources >= 1 else round(d.max_sources * len(sources))
        chosen = {sources[i] for i in rng.permutation(len(sources))[:count]}
        pairs = [p for p in pairs if p[0] in chosen]
    if d.max_pairs is not None:
        rng = np.random.default_rng(d.seed)
        order = rng.permutation(len(pairs))[: d.max_pairs]
        pairs = [pairs[i] for i in sorted(order)]
    return pairs


def _size(value):
    """A split size from the config: a fraction below 1, else a count."""
    return float(value) if value < 1 else int(value)


@dataclasses.dataclass
class PreparedData:
    """The data stage's output: the splits, the transfer set's sources, and counts."""

    splits: data_lib.Splits
    transfer_sources: list
    summary: dict  # source, pairs, train, valid, test (for the report)


def prepare_data(config, with_transfer=True):
    """Reads (or generates) the pairs and splits them; reads the transfer sources now, so
    that a bad transfer file stops the run before anything trains."""
    d = config.data
    pairs = load_pairs(config)
    splits = data_lib.split_pairs(
        pairs, valid_size=_size(d.valid_size), test_size=_size(d.test_size), seed=d.seed
    )
    sources = transfer.transfer_sources(config, splits) if with_transfer else []
    _LOG.info(
        f"{len(pairs)} pairs -> train {len(splits.train)}, valid {len(splits.valid)}, "
        f"test {len(splits.test)}"
    )
    if sources:
        _LOG.info(f"transfer set: {len(sources)} source sentences without references")
    summary = {
        "source": d.source,
        "pairs": len(pairs),
        "train": len(splits.train),
        "valid": len(splits.valid),
        "test": len(splits.test),
    }
    return PreparedData(splits, sources, summary)


@dataclasses.dataclass
class Tokenizers:
    """The run's source and target tokenizers (the same object when shared)."""

    source: data_lib.Tokenizer
    target: data_lib.Tokenizer

    @property
    def special(self):
        """The target side's start / end / pad ids, as decoding and export take them."""
        return self.target.special_ids

    @property
    def note(self):
        """What every model file of the run carries about the ids it reads and writes."""
        return {
            "source_tokenizer": self.source.fingerprint,
            "target_tokenizer": self.target.fingerprint,
        }


def prepare_tokenizers(config, train_pairs, run_dir, resume):
    """Trains the tokenizers on the training split and saves them in the run directory;
    on `--resume`, loads the ones saved there instead."""
    directory = read_dir(run_dir.tokenizer_dir)
    if resume and (directory / "target_vocab.txt").exists():
        _LOG.info("tokenizer loaded from the previous run")
        return load_tokenizers(run_dir)
    t = config.tokenizer
    sources = [s for s, _ in train_pairs]
    targets = [g for _, g in train_pairs]
    if t.shared:
        source = target = data_lib.Tokenizer.train(sources + targets, t.vocabulary_size)
    else:
        source = data_lib.Tokenizer.train(sources, vocabulary_size=t.vocabulary_size)
        target = data_lib.Tokenizer.train(targets, vocabulary_size=t.vocabulary_size)
    tmp = directory.with_name(directory.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    source.save(tmp, "source")
    target.save(tmp, "target")
    replace_dir(tmp, directory)
    _LOG.info(f"vocabulary: source {source.vocabulary_size}, target {target.vocabulary_size}")
    return Tokenizers(source, target)


def load_tokenizers(run_dir):
    directory = read_dir(run_dir.tokenizer_dir)
    return Tokenizers(
        data_lib.Tokenizer.load(directory, "source"), data_lib.Tokenizer.load(directory, "target")
    )


@dataclasses.dataclass
class EvalSet:
    """Distinct source sentences, all their references in the split, and their token ids
    (N, max_sequence_length), padded."""

    sources: list
    references: list
    source_ids: np.ndarray

    def head(self, n):
        """The first `n` sentences."""
        return EvalSet(self.sources[:n], self.references[:n], self.source_ids[:n])


def eval_set(pairs, tokenizer, max_length):
    """Each distinct source of `pairs` once, with every reference it has in `pairs`
    (Tatoeba lists many sources with several translations: multi-reference BLEU)."""
    sources, references = evaluation.group_references(pairs)
    ids = tokenizer.encode_batch(sources, max_length=max_length)
    # A fixed width: every batch decodes at the same shape.
    ids = np.pad(ids, ((0, 0), (0, max_length - ids.shape[1])), constant_values=tokenizer.pad_id)
    return EvalSet(sources, references, ids)


@dataclasses.dataclass
class Datasets:
    """The batched datasets of the three splits, the options that made them (for the
    students' own training datasets), and the sentence sets evaluation decodes."""

    train: object  # tf.data.Dataset
    valid: object
    test: object
    options: dict  # tokenizers, batch_size, max_sequence_length, bucket_lengths
    train_pairs: int  # pairs in `train`
    train_split: list  # those pairs, for a model that needs a training dataset of its own
    valid_set: EvalSet  # the first `evaluation.valid_sentences` validation sources
    test_set: EvalSet
    truncation: dict  # training pairs cut by max_sequence_length (see `count_truncated`)


# The share of training pairs cut by max_sequence_length that earns a warning (the
# refusal is at training.max_truncated_share).
WARN_TRUNCATED = 0.01


def count_truncated(pairs, tokenizers, max_length):
    """How many pairs `max_sequence_length` cuts: a source longer than it, or a target
    that leaves no room for the end token (the model would never learn to stop there).
    Also the length that would keep 99% of each side whole."""
    sources = [len(r) for r in tokenizers.source.tokenize([s for s, _ in pairs])]
    targets = [len(r) + 1 for r in tokenizers.target.tokenize([t for _, t in pairs])]
    source_cut = sum(n > max_length for n in sources)
    target_cut = sum(n > max_length for n in targets)
    cut = sum(a > max_length or b > max_length for a, b in zip(sources, targets, strict=True))
    keeps_99 = int(max(np.percentile(sources, 99), np.percentile(targets, 99))) if pairs else 0
    return {
        "pairs": len(pairs),
        "source_cut": source_cut,
        "target_cut": target_cut,
        "share": round(cut / max(1, len(pairs)), 4),
        "length_keeping_99_percent": keeps_99,
    }


def check_truncation(found, max_length, limit=0.25):
    """Logs the share of cut training pairs; warns above 1%, refuses above `limit`."""
    share = found["share"]
    what = (
        f"training.max_sequence_length {max_length} cuts {share:.1%} of the training pairs "
        f"({found['source_cut']} sources, {found['target_cut']} targets)"
    )
    if share > limit:
        raise ConfigError(
            f"{what}, more than training.max_truncated_share ({limit:.0%}) allows. Raise "
            f"training.max_sequence_length to about {found['length_keeping_99_percent']} "
            "(keeps 99% of both sides whole)."
        )
    if share > WARN_TRUNCATED:
        _LOG.warning(
            f"{what}; raise it to about {found['length_keeping_99_percent']} to keep 99% whole."
        )
    else:
        _LOG.info(what)


def make_datasets(config, splits, tokenizers):
    """The datasets and evaluation sets; refuses a max_sequence_length that cuts more
    than a quarter of the training pairs."""
    t = config.training
    truncation = count_truncated(splits.train, tokenizers, t.max_sequence_length)
    check_truncation(truncation, t.max_sequence_length, t.max_truncated_share)
    options = dict(
        source_tokenizer=tokenizers.source,
        target_tokenizer=tokenizers.target,
        batch_size=t.batch_size,
        max_sequence_length=t.max_sequence_length,
        bucket_lengths=t.bucket_lengths,
    )
    max_length = t.max_sequence_length
    valid_set = eval_set(splits.valid, tokenizers.source, max_length)
    return Datasets(
        train=data_lib.make_seq2seq_dataset(splits.train, shuffle=True, seed=t.seed, **options),
        valid=data_lib.make_seq2seq_dataset(splits.valid, shuffle=False, **options),
        test=data_lib.make_seq2seq_dataset(splits.test, shuffle=False, **options),
        options=options,
        train_pairs=len(splits.train),
        train_split=list(splits.train),
        valid_set=valid_set.head(config.evaluation.valid_sentences),
        test_set=eval_set(splits.test, tokenizers.source, max_length),
        truncation=truncation,
    )


def decode_length(config):
    """Most target tokens a translation may have."""
    return config.export.max_decode_length or config.training.max_sequence_length


def bleu_of(model, sentences, tokenizers, config):
    """Corpus BLEU of `model`'s greedy translations of an `EvalSet`."""
    ids = evaluation.translate_ids(
        model,
        sentences.source_ids,
        decode_length(config),
        batch_size=config.evaluation.batch_size,
        **tokenizers.special,
    )
    hypotheses = tokenizers.target.detokenize(ids)
    return evaluation.corpus_scores(hypotheses, sentences.references)[0]
