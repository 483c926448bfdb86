"""Which `tf.distribute` strategy the pipeline trains under (`training.distribution`), and
the bookkeeping that comes with several workers.

The pipeline builds and fits every model it trains inside `scope()`, so Keras' `fit`
splits each global batch over the replicas (`training.batch_size` is the global batch);
everything else (teacher outputs, translations, evaluation, export) runs on a plain
local copy of the trained model (`local_copy`). With several workers (TF_CONFIG), every
worker runs every stage in the same order (training needs all of them at each step),
and only the chief writes the run directory: the others write to a scratch copy that
is removed when they finish (`pipeline.run.run_pipeline`).
"""

import contextlib
import json
import logging
import os

from tf_distill.errors import ConfigError

_LOG = logging.getLogger(__name__)
DISTRIBUTIONS = ("auto", "none", "mirrored", "multi_worker")

_active = None  # the strategy `use` set, or None (TensorFlow's default strategy)


def cluster_spec():
    """`(cluster workers, this task's type, its index)` from TF_CONFIG; `(0, None, None)`
    without one.

    Raises:
        ConfigError: TF_CONFIG is not the JSON that tf.distribute reads.
    """
    raw = os.environ.get("TF_CONFIG", "").strip()
    if not raw:
        return 0, None, None
    try:
        found = json.loads(raw)
        cluster, task = found.get("cluster", {}), found.get("task", {})
        workers = len(cluster.get("worker", [])) + len(cluster.get("chief", []))
        return workers, task.get("type"), int(task.get("index", 0))
    except (ValueError, AttributeError, TypeError):
        raise ConfigError(
            'TF_CONFIG must be JSON like {"cluster": {"worker": ["host1:port", '
            '"host2:port"]}, "task": {"type": "worker", "index": 0}}. '
            f"Received: {raw[:120]!r}."
        ) from None


def resolve(setting, gpus=None):
    """`training.distribution` as one of "none", "mirrored", "multi_worker": "auto" is
    multi_worker when TF_CONFIG names several workers, mirrored when TensorFlow sees more
    than one GPU (`gpus`: the GPU list, for tests), else none.

    Raises:
        ConfigError: "multi_worker" without a TF_CONFIG that names this worker's cluster.
    """
    workers, _, _ = cluster_spec()
    if setting == "auto":
        if workers > 1:
            return "multi_worker"
        if gpus is None:
            import tensorflow as tf

            gpus = tf.config.list_physical_devices("GPU")
        return "mirrored" if len(gpus) > 1 else "none"
    if setting == "multi_worker" and workers < 1:
        raise ConfigError(
            "training.distribution is 'multi_worker' but TF_CONFIG is not set. Set it on "
            "every worker (README, 'Several GPUs or machines'), or use 'auto' / 'none'."
        )
    return setting


def make_strategy(kind):
    """The strategy of a resolved kind ("none": None, the default strategy)."""
    import tensorflow as tf

    if kind == "none":
        return None
    if kind == "mirrored":
        return tf.distribute.MirroredStrategy()
    return tf.distribute.MultiWorkerMirroredStrategy()


def is_chief():
    """Whether this process writes the run directory: always without TF_CONFIG; else the
    "chief" task, or worker 0 of a cluster without one."""
    workers, task_type, index = cluster_spec()
    if workers == 0 or task_type is None:
        return True
    if task_type == "chief":
        return True
    return task_type == "worker" and index == 0 and not _has_chief()


def barrier(strategy):
    """Returns once every worker of a multi-worker `strategy` has called it (a one-number
    all-reduce); a no-op for None or a single-machine strategy. Every worker must call it
    at the same point, as any collective."""
    import tensorflow as tf

    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return
    ones = strategy.run(lambda: tf.ones(()))
    strategy.reduce(tf.distribute.ReduceOp.SUM, ones, axis=None)


def _has_chief():
    cluster = json.loads(os.environ["TF_CONFIG"]).get("cluster", {})
    return bool(cluster.get("chief"))


def use(strategy):
    """Makes `strategy` (None: the default) the one `scope()` enters."""
    global _active
    _active = strategy


def active():
    return _active


def replicas():
    return 1 if _active is None else int(_active.num_replicas_in_sync)


def scope():
    """The active strategy's scope (a no-op without one): build and fit models in it."""
    return _active.scope() if _active is not None else contextlib.nullcontext()


def local_copy(model):
    """`model` with plain (not distributed) variables, for inference and export; itself
    when no strategy is active. Call it outside `scope()`."""
    if _active is None:
        return model
    import keras

    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


def distributed(train, *args, **kwargs):
    """Runs `train(*args, **kwargs)` (a function that builds and fits a model and returns
    a `TrainedModel`) inside `scope()`; returns it with a local copy of the model."""
    import dataclasses

    with scope():
        trained = train(*args, **kwargs)
    return dataclasses.replace(trained, model=local_copy(trained.model))


def split_global_batches(dataset):
    """`dataset` (of global batches) distributed so that each global batch is split into
    one contiguous piece per replica, in replica order: replica k of N takes rows
    [k*B/N, (k+1)*B/N) of a batch of B (partial batches too). Every worker reads the whole
    dataset and keeps its own replicas' pieces, so a step sees exactly the global batch one
    process would (tf.distribute's own sharding of a multi-worker input does not promise
    that). The dataset itself when no strategy is active."""
    if _active is None:
        return dataset
    import tensorflow as tf

    pieces = int(_active.num_replicas_in_sync)

    def dataset_fn(context):
        workers, worker = context.num_input_pipelines, context.input_pipeline_id
        local = pieces // workers
        mine = range(worker * local, (worker + 1) * local)

        def split(*batch):
            size = tf.shape(tf.nest.flatten(batch)[-1])[0]
            parts = None
            for k in mine:
                start, stop = (k * size) // pieces, ((k + 1) * size) // pieces
                part = tf.data.Dataset.from_tensors(
                    tf.nest.map_structure(lambda t, a=start, b=stop: t[a:b], batch)
                )
                parts = part if parts is None else parts.concatenate(part)
            return parts

        return dataset.flat_map(split).prefetch(2)

    options = tf.distribute.InputOptions(experimental_fetch_to_device=False)
    return _active.distribute_datasets_from_function(dataset_fn, options)
