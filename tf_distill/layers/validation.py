"""Argument checks shared by the layers and model builders, with messages that say the fix."""

import numbers

import keras


def check_positive(**values):
    """Raises ValueError unless every value is a positive integer."""
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
            raise ValueError(f"`{name}` must be a positive integer. Received: {name}={value!r}.")


def check_dropout(dropout, name="dropout"):
    """Raises ValueError unless 0 <= dropout < 1."""
    if (
        isinstance(dropout, bool)
        or not isinstance(dropout, numbers.Real)
        or not (0.0 <= dropout < 1.0)
    ):
        raise ValueError(f"`{name}` must be a number in [0, 1). Received: {name}={dropout!r}.")


def check_heads_divide(hidden_dim, num_heads):
    """Raises ValueError unless `num_heads` divides `hidden_dim`."""
    check_positive(hidden_dim=hidden_dim, num_heads=num_heads)
    if hidden_dim % num_heads:
        raise ValueError(
            "`num_heads` must divide `hidden_dim`. "
            f"Received: hidden_dim={hidden_dim}, num_heads={num_heads}. "
            f"Pick num_heads among {[n for n in range(1, hidden_dim + 1) if hidden_dim % n == 0]}."
        )


def check_choice(value, choices, name):
    """Raises ValueError unless `value` is one of `choices`."""
    if value not in choices:
        raise ValueError(f"`{name}` must be one of {list(choices)}. Received: {name}={value!r}.")


def clone_initializer(initializer):
    """An initializer for one sublayer. A name (e.g. "glorot_uniform") or a config dict is
    passed on as it is, for the sublayer to resolve: each then draws its own seed, exactly
    as if no initializer had been given, so the default keeps Keras' random stream. An
    initializer object is copied, so a seeded one does not hand the same draw to every
    kernel it initializes."""
    if isinstance(initializer, str | dict):
        return initializer
    initializer = keras.initializers.get(initializer)
    return initializer.__class__.from_config(initializer.get_config())


def serialize_initializer(initializer):
    """`get_config()`'s form of an initializer given as a name, a dict or an object
    (serializing never draws a seed)."""
    if isinstance(initializer, str | dict):
        return initializer
    return keras.initializers.serialize(initializer)


def sub_seed(seed, offset):
    """The seed of the `offset`-th random sublayer of a layer seeded with `seed` (None
    stays None: unseeded)."""
    return None if seed is None else int(seed) + int(offset)
