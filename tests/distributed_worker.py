"""One process of the distributed Distiller test (run by tests/test_distributed.py).

    python tests/distributed_worker.py MODE OUTPUT.npz

MODE is `single` (default strategy), `mirrored` (MirroredStrategy over two logical CPUs) or
`multi_worker` (MultiWorkerMirroredStrategy; TF_CONFIG names this worker), optionally with
`+features` (hidden-state, attention and value-relation terms on, with projections) and
`+clip` (an optimizer clipnorm that acts every step) and `+split` (the batches split by
`tf_distill.distribution.split_global_batches`, as the pipeline does). Every mode
trains the same student on the same global batches and saves its final weights, so the
test can check that distribution changes nothing but the speed.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ["CUDA_VISIBLE_DEVICES"] = ""

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tf_distill import Distiller, build_transformer, distribution  # noqa: E402

V, GLOBAL_BATCH, STEPS = 24, 8, 3


def global_batches():
    """STEPS global batches whose halves hold very different numbers of real tokens, so a
    mean of per-replica means would differ from the global mean."""
    rng = np.random.default_rng(0)
    batches = []
    for _ in range(STEPS):
        encoder = rng.integers(1, V, size=(GLOBAL_BATCH, 6)).astype("int32")
        target = rng.integers(1, V, size=(GLOBAL_BATCH, 5)).astype("int32")
        target[: GLOBAL_BATCH // 2, 1:] = 0  # first half: one real token per row
        decoder = np.concatenate([np.full((GLOBAL_BATCH, 1), 2, "int32"), target[:, :-1]], 1)
        decoder[target == 0] = 0
        batches.append(({"encoder_token_ids": encoder, "decoder_token_ids": decoder}, target))
    return batches


def build(features=False, clip=False):
    keras.utils.set_random_seed(42)
    teacher = build_transformer(V, 8, 1, 2, 16, 32, dropout=0.0)
    student = build_transformer(V, 8, 1, 2, 8, 16, dropout=0.0)
    terms = {}
    if features:
        terms = {"hidden_weight": 0.5, "attention_weight": 0.5, "value_weight": 0.5}
    distiller = Distiller(teacher, student, alpha=0.5, temperature=2.0, **terms)
    # With `clip`, a norm bound every step's gradients exceed: the clip must act on the
    # global gradient, as on one device.
    optimizer = keras.optimizers.SGD(learning_rate=0.5, clipnorm=0.05 if clip else None)
    distiller.compile(optimizer=optimizer)
    return distiller


def stacked(batches):
    x = {k: np.concatenate([b[0][k] for b in batches]) for k in batches[0][0]}
    return x, np.concatenate([b[1] for b in batches])


def main(mode, output):
    mode, *extras = mode.split("+")
    features, clip = "features" in extras, "clip" in extras
    pipeline_split = "split" in extras
    batches = global_batches()
    if mode == "single":
        distiller = build(features, clip)
        x, y = stacked(batches)
        history = distiller.fit(x, y, batch_size=GLOBAL_BATCH, shuffle=False, verbose=0)
    else:
        if mode == "mirrored":
            cpu = tf.config.list_physical_devices("CPU")[0]
            tf.config.set_logical_device_configuration(
                cpu, [tf.config.LogicalDeviceConfiguration()] * 2
            )
            strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        else:
            strategy = tf.distribute.MultiWorkerMirroredStrategy()
        with strategy.scope():
            distiller = build(features, clip)
        x, y = stacked(batches)
        replicas = strategy.num_replicas_in_sync
        per_replica = GLOBAL_BATCH // replicas

        def dataset_fn(context):
            # Replica r of pipeline p takes its exact slice of every global batch.
            dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(GLOBAL_BATCH)
            workers, worker = context.num_input_pipelines, context.input_pipeline_id
            local = GLOBAL_BATCH // workers
            dataset = dataset.map(
                lambda a, b: (
                    {k: v[worker * local : (worker + 1) * local] for k, v in a.items()},
                    b[worker * local : (worker + 1) * local],
                )
            )
            return dataset.unbatch().batch(per_replica)

        if pipeline_split:
            # As the pipeline does: a repeated dataset of the global batches, split by
            # tf_distill.distribution (and nothing consumed by Keras' symbolic build).
            distribution.use(strategy)
            dataset = distribution.split_global_batches(
                tf.data.Dataset.from_tensor_slices((x, y)).batch(GLOBAL_BATCH).repeat()
            )
        else:
            options = tf.distribute.InputOptions(experimental_fetch_to_device=False)
            dataset = strategy.distribute_datasets_from_function(dataset_fn, options)
        history = distiller.fit(dataset, steps_per_epoch=STEPS, verbose=0)
    weights = distiller.student.get_weights()
    weights += [np.asarray(v) for v in distiller.distillation_variables]
    np.savez(
        output,
        loss=np.array(history.history["loss"]),
        **{f"w{i}": w for i, w in enumerate(weights)},
    )
    print("WORKER_DONE", mode)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
