"""Build the Keras networks: the reference MLP of the classic Fashion-MNIST tutorial."""

import keras
import tensorflow as tf

from service.contract import IMAGE_SIDE, INPUT_NAME, NUM_CLASSES

REFERENCE = "mlp-128"


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow and ask TF for deterministic kernels (cheap on CPU)."""
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def build_reference(learning_rate: float, decay_steps: int | None = None) -> keras.Model:
    """Flatten → Dense(128, ReLU) → Dense(10) logits, compiled with Adam and cross-entropy.

    With decay_steps, the learning rate follows a cosine from learning_rate down to 0 over that
    many steps instead of staying constant.
    """
    schedule = learning_rate
    if decay_steps:
        # Annealing removes the last epochs' step noise, which costs the constant-rate
        # tutorial setting about a point of test accuracy from one seed to the next.
        schedule = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps)
    model = keras.Sequential(
        [
            keras.Input(shape=(IMAGE_SIDE, IMAGE_SIDE), name=INPUT_NAME),
            keras.layers.Flatten(),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(NUM_CLASSES),  # logits: the softmax is added at export
        ],
        name=REFERENCE,
    )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=schedule),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def describe(model: keras.Model) -> dict:
    """The card's architecture entry: name, one readable line per layer, parameter count."""
    layers = []
    for layer in model.layers:
        line = f"{type(layer).__name__}"
        if isinstance(layer, keras.layers.Dense):
            activation = layer.activation.__name__
            line += f"({layer.units}" + (f", {activation})" if activation != "linear" else ")")
        layers.append(f"{line} -> {tuple(layer.output.shape[1:])}")
    return {"name": model.name, "layers": layers, "parameters": int(model.count_params())}
