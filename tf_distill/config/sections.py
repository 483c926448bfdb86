"""The typed sections of a run config, their defaults, and small helpers that read them.

Every key is named like the constructor argument it feeds; the comments say what it does.
"""

import dataclasses


@dataclasses.dataclass
class DataConfig:
    source: str = "synthetic"  # synthetic | tsv | parallel | tfds; classification also csv
    path: str | None = None  # tsv file, or the source-side file of a parallel corpus
    target_path: str | None = None  # target-side file of a parallel corpus
    source_column: int = 0
    target_column: int = 1
    reverse: bool = False  # swap source and target
    tfds_name: str | None = None  # e.g. "ted_hrlr_translate/pt_to_en"
    data_dir: str | None = None
    download: bool = False
    num_pairs: int = 20000  # synthetic corpus size
    ambiguity: float = 0.3  # synthetic: probability mass on alternative translations
    max_pairs: int | None = None  # cap on pairs read from a file / tfds
    # Cap on distinct source sentences read from a file / tfds, drawn at random (seeded)
    # with every pair of each one kept, so that a source keeps all its references: a count,
    # or a fraction (< 1) of the distinct sources.
    max_sources: float | None = None
    valid_size: float = 0.05  # fraction (< 1) or count of pairs (a source's pairs stay together)
    test_size: float = 0.05
    seed: int = 0
    # Corpora larger than memory (translation; tsv, parallel or synthetic data): the data is
    # read as a stream, split by a hash of each source sentence, and the training pairs
    # tokenized once, chunk_pairs at a time, into TFRecord shards in the run directory
    # (resumable), read back through a shuffle buffer of shuffle_buffer pairs per length
    # bucket; the teacher's top-k cache is written to shards too. The tokenizer trains on
    # a random sample of tokenizer.sample_pairs training pairs.
    streaming: bool = False
    chunk_pairs: int = 50000
    shuffle_buffer: int = 20000
    # Classification (task "classification"). The text and label columns of a tsv / csv
    # file, by 0-based index or by header name; header: the first row names the columns
    # (null: yes when a column is given by name); delimiter: null for "," in a .csv file
    # and a tab otherwise. A tfds set reads the features text_column / label_column
    # (default "text" / "label"). label_noise: share of the built-in reviews' labels
    # redrawn at random (num_pairs counts reviews).
    text_column: int | str = 1
    label_column: int | str = 0
    header: bool | None = None
    delimiter: str | None = None
    label_noise: float = 0.0


@dataclasses.dataclass
class TokenizerConfig:
    vocabulary_size: int = 2000
    shared: bool = True  # one vocabulary for source and target
    sample_pairs: int = 200000  # with data.streaming: training pairs the tokenizer learns from


@dataclasses.dataclass
class ModelConfig:
    num_layers: int = 2
    num_heads: int = 4
    hidden_dim: int = 128
    intermediate_dim: int = 512
    dropout: float = 0.1
    num_encoder_layers: int | None = None
    num_decoder_layers: int | None = None
    tie_embeddings: bool = False
    position_embedding: str = "learned"
    normalize_first: bool = True
    # Teacher only: a trained .keras file (or a list of them) to load instead of training.
    path: str | list[str] | None = None
    # Teacher only: how many teachers distil as an ensemble (the mean of their
    # probabilities); those not loaded from `path` are trained in the run, each with its
    # own seed. null: one per `path` file, or 1.
    ensemble_size: int | None = None
    # Classification. The teacher's architecture: "transformer" (tf_distill's
    # build_classifier, reading the run's tokenizer) or "bert" (keras_hub's
    # BertTextClassifier with a keras-hub WordPiece tokenizer of its own, trained on the
    # training texts with `vocabulary_size` entries). preset: a local keras-hub preset
    # directory of a text classifier (its tokenizer included) to start the teacher from;
    # never downloaded. pooling: "mean" or "first" (build_classifier).
    architecture: str = "transformer"
    preset: str | None = None
    vocabulary_size: int | None = None
    pooling: str = "mean"


@dataclasses.dataclass
class DistillationConfig:
    alpha: float = 0.5
    temperature: float = 2.0
    baseline: bool = True  # also train the student without a teacher
    # Sequence-level KD (Kim & Rush, 2016): the student's targets are the teacher's greedy
    # translations of the training sources (the CE + T^2 KL loss stays).
    sequence_level: bool = False
    # Keep the teacher's k largest logits per training token, computed once before the
    # student trains, instead of running the teacher on every batch of every epoch
    # (tf_distill.teacher_cache). None: run the teacher live (exact KD).
    teacher_top_k: int | None = None
    # A transfer set (tf_distill.transfer): source sentences without references that the
    # teacher translates and the student trains on besides the labelled pairs; the
    # baseline cannot use them. transfer_path: a UTF-8 file, one source sentence per line;
    # without one (built-in corpus only), transfer_size new sentences are generated.
    # transfer_size also caps the file's sentences. null and null: no transfer set.
    transfer_size: int | None = None
    transfer_path: str | None = None
    # Which tab-separated column of transfer_path holds the source sentence (e.g. 0 to use
    # the source side of a Tatoeba file); null: the whole line is the sentence.
    transfer_column: int | None = None
    # Beam size of the teacher's translations (sequence-level KD and the transfer set);
    # 1 is greedy. Kim & Rush (2016) train the student on the teacher's beam output.
    sequence_level_beam: int = 1
    # Also train the student architecture on the teacher-labelled pairs with
    # cross-entropy alone (no KL term), to show what the KL term itself adds.
    ce_only_ablation: bool = False
    # Classification: this many perturbed copies of every training text join the transfer
    # set, labelled by the teacher (Tang et al., 2019, "Distilling Task-Specific Knowledge
    # from BERT into Simple Neural Networks": words masked or swapped for another word of
    # the training texts, or a span kept). 0: none.
    augment_copies: int = 0
    # Feature distillation (Distiller; tf_distill.features): weights of the hidden-state
    # (TinyBERT: MSE through a learned projection), attention (KL of the attention maps)
    # and value-relation (MiniLM) terms, added to the logit terms; 0: off. They need a
    # teacher built by tf_distill that reads the student's token ids (not a keras-hub one,
    # not an ensemble); it runs on every batch unless feature_cache_mb allows a cache.
    hidden_weight: float = 0.0
    attention_weight: float = 0.0
    value_weight: float = 0.0
    hidden_loss: str = "mse"  # mse | cosine
    # With a feature term on, keep the teacher's features for the student's training data
    # in memory (float16; tf_distill.teacher_cache.teacher_features) when they take at
    # most this many MB, so the teacher does not run on every batch; beyond it (or 0),
    # the teacher runs live. The tf.data pipeline holds a second copy.
    feature_cache_mb: float = 1024.0
    # Which teacher layer (1-based) each student layer learns from; null: uniform
    # (layer m of L_s from ceil(m * L_t / L_s), so the last layers meet).
    encoder_layer_map: list[int] | None = None
    decoder_layer_map: list[int] | None = None
    # Start the distilled student from the teacher's embeddings, output layer and one
    # layer in every k (DistilBERT), not from random weights; the student must be as wide
    # as the teacher (hidden_dim, num_heads, intermediate_dim, tie_embeddings). The
    # baseline still starts from random weights. init_*_layers: the 0-based teacher layers
    # to copy, one per student layer; null: every k-th from the first.
    init_from_teacher: bool = False
    init_encoder_layers: list[int] | None = None
    init_decoder_layers: list[int] | None = None
    # Batch sizes of the teacher's passes over the student's data: pairs per call when its
    # top-k logits are cached, sources per call when it translates (sequence-level KD,
    # transfer set). Inference only, so larger than training.batch_size.
    teacher_batch_size: int = 128
    translation_batch_size: int = 256


@dataclasses.dataclass
class TrainingConfig:
    epochs: int = 10
    teacher_epochs: int | None = None  # defaults to `epochs`
    # The distilled student's epochs (defaults to `epochs`, the baseline's), e.g. fewer
    # passes over a student set enlarged by a transfer set.
    student_epochs: int | None = None
    batch_size: int = 64
    learning_rate: float = 1e-3
    # The teachers' peak learning rate (null: learning_rate). A BERT-style post-norm
    # teacher trained from scratch wants a lower one than the small students.
    teacher_learning_rate: float | None = None
    warmup_steps: int = 200
    max_sequence_length: int = 32
    bucket_lengths: list[int] | None = None
    # "auto": XLA on when a GPU is visible. On CPU, at small.json's shapes, it measured
    # slower here (compile minutes per model, slower steps; docs/BENCHMARKS.md).
    jit_compile: bool | str = "auto"
    # Dtype policy of the models tf_distill builds while they train: "float32",
    # "mixed_float16", "mixed_bfloat16", or "auto" (mixed_float16 when TensorFlow sees a
    # GPU, else float32: bf16 measured too small a gain on this CPU, docs/BENCHMARKS.md).
    # Variables and losses stay float32, and every trained model is saved, evaluated and
    # exported in float32.
    mixed_precision: str = "auto"
    # tf.distribute strategy of every model the run trains: "none", "mirrored" (all local
    # GPUs), "multi_worker" (the workers TF_CONFIG names; only the chief writes the run
    # directory), or "auto" (multi_worker when TF_CONFIG names several workers, mirrored
    # with several GPUs, else none). batch_size is the global batch.
    distribution: str = "auto"
    early_stopping_patience: int = 3
    # The most training pairs max_sequence_length may cut (a source longer than it, or a
    # target with no room left for the end token) before the run refuses to start.
    max_truncated_share: float = 0.25
    seed: int = 0
    # Teacher recipe. Label smoothing eps of the teachers' CE target (Szegedy et al. 2016).
    teacher_label_smoothing: float = 0.0
    # Average the teachers' weights over their last N epochs (N = 1: no averaging); the
    # average is kept only when its validation BLEU is at least the last epoch's.
    teacher_average_epochs: int = 1
    # Optimizer and schedule (AdamW with warmup then cosine decay).
    weight_decay: float = 1e-4
    clipnorm: float = 1.0
    cosine_final_fraction: float = 0.05  # the learning rate ends at this share of its peak


@dataclasses.dataclass
class ExportConfig:
    enabled: bool = True
    formats: list[str] = dataclasses.field(
        default_factory=lambda: ["saved_model", "tflite_fp32", "tflite_fp16", "tflite_int8"]
    )
    max_decode_length: int | None = None  # defaults to training.max_sequence_length
    parity_sentences: int = 200  # test sentences decoded by every format at export time
    # Share of those sentences that fp16 / int8 files must decode exactly as Keras does
    # (fp32 files and the SavedModel must always agree on all of them).
    min_sequence_agreement: float = 0.97
    # Translation: fp16 / int8 files are judged by quality instead: their corpus BLEU on the
    # parity sentences may fall at most this far below the Keras student's (the Bergamot
    # int8 students lose about 0.5). null: require min_sequence_agreement instead.
    max_bleu_drop: float | None = 0.5
    # "dynamic": int8 weights, float activations. "full": activations in int8 too, their
    # ranges calibrated on the parity sentences (ops without an int8 kernel stay float).
    int8_mode: str = "dynamic"
    # Round the trained student's weights to the per-tensor int8 grid before it is
    # evaluated and exported (tflite.round_to_int8_grid): the int8 file then stores the
    # evaluated model's own weights, and only activation rounding separates the two.
    round_to_int8_grid: bool = True
    # Beam search on the device: a translate_beam signature with this many beams (GNMT
    # length penalty 0.6) in student_<precision>_beam.tflite beside each greedy file.
    # 1: greedy files only.
    beam_size: int = 4


@dataclasses.dataclass
class EvaluationConfig:
    beam_size: int = 4
    max_sentences: int = 500  # test sentences decoded for BLEU / chrF
    latency_sentences: int = 20
    num_samples: int = 5  # sample translations in the report
    valid_sentences: int = 100  # validation sources decoded for the per-epoch BLEU
    bootstrap_samples: int = 1000  # paired bootstrap resamples of the BLEU differences
    batch_size: int = 64  # test / validation sources decoded per call


@dataclasses.dataclass
class Config:
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    tokenizer: TokenizerConfig = dataclasses.field(default_factory=TokenizerConfig)
    teacher: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    student: ModelConfig = dataclasses.field(
        default_factory=lambda: ModelConfig(num_layers=1, hidden_dim=64, intermediate_dim=256)
    )
    distillation: DistillationConfig = dataclasses.field(default_factory=DistillationConfig)
    training: TrainingConfig = dataclasses.field(default_factory=TrainingConfig)
    export: ExportConfig = dataclasses.field(default_factory=ExportConfig)
    evaluation: EvaluationConfig = dataclasses.field(default_factory=EvaluationConfig)
    output_dir: str = "saved_models/run"
    task: str = "translation"  # translation | classification

    def to_dict(self):
        return dataclasses.asdict(self)


TOP_LEVEL_KEYS = ("output_dir", "task")
SECTIONS = {f.name: f for f in dataclasses.fields(Config) if f.name not in TOP_LEVEL_KEYS}
DATA_SOURCES = ("synthetic", "tsv", "parallel", "tfds", "csv")
TASKS = ("translation", "classification")
EXPORT_FORMATS = ("saved_model", "tflite_fp32", "tflite_fp16", "tflite_int8")


def feature_terms_on(distillation):
    """Whether any hidden-state / attention / value-relation term is on."""
    d = distillation
    return any(w > 0 for w in (d.hidden_weight, d.attention_weight, d.value_weight))


def stack_depths(model, task):
    """{stack: layers} of a teacher or student section (its encoder and, for
    translation, decoder depth)."""
    depths = {"encoder": model.num_encoder_layers or model.num_layers}
    if task == "translation":
        depths["decoder"] = model.num_decoder_layers or model.num_layers
    return depths


def teacher_paths(config):
    """`teacher.path` as a list of files ([] when teachers are trained)."""
    path = config.teacher.path
    if path is None:
        return []
    return [path] if isinstance(path, str) else list(path)


def teacher_count(config):
    """How many teachers the run distils from (loaded and trained)."""
    paths = teacher_paths(config)
    return config.teacher.ensemble_size or max(1, len(paths))


MIXED_PRECISION = ("auto", "float32", "mixed_float16", "mixed_bfloat16")


def resolve_mixed_precision(setting, gpus=None):
    """`training.mixed_precision` as a Keras dtype policy name; "auto" means
    "mixed_float16" when TensorFlow sees a GPU (`gpus`: the GPU list, for tests), else
    "float32"."""
    if setting != "auto":
        return setting
    if gpus is None:
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
    return "mixed_float16" if gpus else "float32"


def resolve_jit_compile(setting):
    """`training.jit_compile` as a bool: "auto" means on when TensorFlow sees a GPU."""
    if setting != "auto":
        return bool(setting)
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))
