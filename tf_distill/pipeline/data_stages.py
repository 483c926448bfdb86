"""The pipeline's data stages: pairs -> splits (+ transfer sources) -> tokenizers ->
tf.data datasets and the fixed sentence sets that evaluation decodes."""

import dataclasses
import logging
import random
import shutil
import time

import numpy as np

from tf_distill import data as data_lib
from tf_distill import evaluation, transfer
from tf_distill.data import DataError
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
    tokenizer_sample: list = None  # a streamed corpus: the pairs the tokenizer learns from

    @property
    def tokenizer_pairs(self):
        """The pairs the tokenizer learns from: the training split, or its sample."""
        return self.splits.train if self.tokenizer_sample is None else self.tokenizer_sample


def stream_pairs(config):
    """The pairs named by `config.data`, as a stream read (or generated) anew each time."""
    from tf_distill.data import readers, synthetic

    d = config.data
    if d.source == "synthetic":
        return synthetic.iter_corpus(d.num_pairs, seed=d.seed, ambiguity=d.ambiguity)
    if d.source == "tsv":
        return readers.iter_tsv(d.path, d.source_column, d.target_column, d.reverse)
    pairs = readers.iter_parallel(d.path, d.target_path)
    return ((t, s) for s, t in pairs) if d.reverse else pairs


class StreamedTrain:
    """The training split of a corpus read as a stream (`data.streaming`): iterating reads
    the data again and yields its training pairs in order; `len()` is their number."""

    def __init__(self, config, shares, count):
        self.config, self.shares, self.count = config, shares, count

    def __len__(self):
        return self.count

    def __iter__(self):
        d = self.config.data
        for pair in stream_pairs(self.config):
            if data_lib.hash_split(pair[0], *self.shares, seed=d.seed) == "train":
                yield pair


def prepare_streamed_data(config):
    """`prepare_data` for a corpus larger than memory: one pass over the stream (two when
    a split size is a count, which needs the total) keeps the valid and test pairs, counts
    the training pairs and draws a uniform sample of `tokenizer.sample_pairs` of them for
    the tokenizer. Splits come from a hash of each source sentence (`hash_split`), so their
    sizes are close to, not exactly, what data.valid_size / test_size ask."""
    d = config.data
    sizes = (d.valid_size, d.test_size)
    total = None
    if any(size >= 1 for size in sizes):
        total = d.num_pairs if d.source == "synthetic" else sum(1 for _ in stream_pairs(config))
    shares = tuple(size if size < 1 else size / total for size in sizes)
    rng = random.Random(d.seed)
    capacity = config.tokenizer.sample_pairs
    sample, held, train = [], {"valid": [], "test": []}, 0
    start = last = time.perf_counter()
    for number, pair in enumerate(stream_pairs(config), start=1):
        split = data_lib.hash_split(pair[0], *shares, seed=d.seed)
        if split != "train":
            held[split].append(pair)
            continue
        train += 1
        if len(sample) < capacity:  # reservoir sampling: each pair kept with equal odds
            sample.append(pair)
        else:
            slot = rng.randrange(train)
            if slot < capacity:
                sample[slot] = pair
        if time.perf_counter() - last > 30:
            last = time.perf_counter()
            _LOG.info(f"data: {number:,} pairs read, {last - start:.0f} s")
    read = train + len(held["valid"]) + len(held["test"])
    for name, pairs in (("train", train), *held.items()):
        if not pairs:
            raise DataError(
                f"data.streaming: the {name} split is empty ({read} pairs read). Give more "
                "data, or adjust data.valid_size / data.test_size."
            )
    splits = data_lib.Splits(StreamedTrain(config, shares, train), held["valid"], held["test"])
    pairs = train + len(splits.valid) + len(splits.test)
    _LOG.info(
        f"{pairs} pairs streamed -> train {train}, valid {len(splits.valid)}, test "
        f"{len(splits.test)}; the tokenizer learns from {len(sample)} of the training pairs"
    )
    summary = {
        "source": d.source,
        "pairs": pairs,
        "train": train,
        "valid": len(splits.valid),
        "test": len(splits.test),
        "streaming": True,
        "tokenizer_sample": len(sample),
    }
    return PreparedData(splits, [], summary, tokenizer_sample=sample)


def prepare_data(config, with_transfer=True):
    """Reads (or generates) the pairs and splits them; reads the transfer sources now, so
    that a bad transfer file stops the run before anything trains. With data.streaming,
    `prepare_streamed_data`."""
    d = config.data
    if d.streaming:
        return prepare_streamed_data(config)
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
    train_split: object  # those pairs (a list, or ShardedExamples when streamed)
    valid_set: EvalSet  # the first `evaluation.valid_sentences` validation sources
    test_set: EvalSet
    truncation: dict  # training pairs cut by max_sequence_length (see `count_truncated`)
    shuffle_buffer: int = 0  # per-bucket shuffle buffer of a streamed training split


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


def make_datasets(config, splits, tokenizers, run_dir=None, resume=False):
    """The datasets and evaluation sets; refuses a max_sequence_length that cuts more
    than a quarter of the training pairs. A streamed training split is tokenized into
    shards in the run directory first (resumable)."""
    t = config.training
    options = dict(
        source_tokenizer=tokenizers.source,
        target_tokenizer=tokenizers.target,
        batch_size=t.batch_size,
        max_sequence_length=t.max_sequence_length,
        bucket_lengths=t.bucket_lengths,
    )
    if isinstance(splits.train, StreamedTrain):
        train_split = write_train_shards(config, splits.train, tokenizers, run_dir)
        truncation = train_split.stats["truncation"]
    else:
        train_split = list(splits.train)
        truncation = count_truncated(train_split, tokenizers, t.max_sequence_length)
    check_truncation(truncation, t.max_sequence_length, t.max_truncated_share)
    max_length = t.max_sequence_length
    valid_set = eval_set(splits.valid, tokenizers.source, max_length)
    datasets = Datasets(
        train=None,
        valid=data_lib.make_seq2seq_dataset(splits.valid, shuffle=False, **options),
        test=data_lib.make_seq2seq_dataset(splits.test, shuffle=False, **options),
        options=options,
        train_pairs=len(train_split),
        train_split=train_split,
        valid_set=valid_set.head(config.evaluation.valid_sentences),
        test_set=eval_set(splits.test, tokenizers.source, max_length),
        truncation=truncation,
        shuffle_buffer=config.data.shuffle_buffer,
    )
    datasets.train = training_dataset(datasets, train_split, t.seed)
    return datasets


def write_train_shards(config, train, tokenizers, run_dir):
    """The streamed training pairs tokenized into `shards/train` of the run directory
    (`tf_distill.data.shards`), chunk by chunk; a stopped run's finished chunks are kept
    and skipped when it resumes."""
    from tf_distill.data.shards import write_seq2seq_shards

    t, d = config.training, config.data
    _LOG.info(f"tokenizing {len(train):,} training pairs into shards, {d.chunk_pairs:,} at a time")
    identity = {
        "data": {k: v for k, v in dataclasses.asdict(d).items() if k != "shuffle_buffer"},
        "train_pairs": len(train),
    }
    return write_seq2seq_shards(
        train,
        run_dir.shards_dir("train"),
        tokenizers.source,
        tokenizers.target,
        t.max_sequence_length,
        t.bucket_lengths,
        chunk_pairs=d.chunk_pairs,
        identity=identity,
    )


def training_dataset(datasets, pairs, seed, cache=None):
    """A shuffled training dataset of `pairs` (a list, or `ShardedExamples`) with the
    columns of `cache` (a dict of arrays, or shards holding the pairs and the columns)."""
    from tf_distill.data.shards import ShardedExamples, shard_dataset

    if isinstance(cache, ShardedExamples) or isinstance(pairs, ShardedExamples):
        if isinstance(cache, dict):
            raise ValueError("Shards take their cached columns as shards, not as arrays.")
        return shard_dataset(
            cache if cache is not None else pairs,
            datasets.options["batch_size"],
            shuffle=True,
            seed=seed,
            shuffle_buffer=datasets.shuffle_buffer,
        )
    return data_lib.make_seq2seq_dataset(
        pairs, shuffle=True, seed=seed, extra_columns=cache, **datasets.options
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
