"""Build the Keras networks: the tutorial's MLP and a small CNN; describe them for the card."""

from typing import Any

import keras
import tensorflow as tf

from service.contract import IMAGE_SIDE, INPUT_NAME, NUM_CLASSES

REFERENCE = "mlp-128"
CNN = "cnn-16-32-64-64"
# Each CNN's stages at 28x28, 14x14 and 7x7: the widths of its 3x3 convolutions, a 2x2 pooling
# after each stage. cnn-real is wider to hold what its augmentations teach.
_V3_STAGES = ((32,), (48,), (64, 64))
_V5_STAGES = ((32,), (48, 48), (64, 64))
# cnn-deep with 96 filters at 7x7 (version 7): the one wider layout inside the 300 microseconds
# (bench.floor_layouts); it held more of the drawn pictures.
_V7_STAGES = ((32,), (48, 48), (96, 96))
CNN_STAGES: dict[str, tuple[tuple[int, ...], ...]] = {
    "cnn": ((16,), (32,), (64, 64)),
    "cnn-real": _V3_STAGES,
    "cnn-ood": _V3_STAGES,
    # A second convolution at 14x14 (pilots: +0.4 points of test and validation accuracy at
    # about 1.6 times the time per image, inside the 300 microseconds).
    "cnn-deep": _V5_STAGES,
    "cnn-long": _V5_STAGES,  # trained longer, in bfloat16
    "cnn-wide": _V7_STAGES,
    "cnn-taught": _V7_STAGES,  # distilled from versions 5, 6 and 7
    "cnn-decay": _V7_STAGES,  # cnn-taught with its convolution kernels decayed
    "cnn-mirror": _V7_STAGES,  # cnn-decay on labels alone, mirrored, 40 epochs
}
ARCHITECTURES = ("mlp", *CNN_STAGES)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow and ask TF for deterministic kernels (cheap on CPU)."""
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


@keras.saving.register_keras_serializable(package="fashion_serve")
class FusedBatchNormalization(keras.layers.BatchNormalization):  # type: ignore[misc]  # keras ships no types
    """Keras' batch norm whose training steps run TensorFlow's fused kernel.

    Keras 3 builds a training step's batch norm from separate moment, normalization and
    gradient ops, which cost about a quarter of this network's train step on a CPU; the fused
    kernel computes the same normalization in one pass (bench/README.md, "Fused batch norm").
    Inference, and every case this project's networks do not use (masks, renormalization,
    moments synchronized across devices, channels not last, no scale or centre), is Keras' own
    call.
    """

    def call(self, inputs: Any, training: Any = None, mask: Any = None) -> Any:
        fused = (
            training and self.trainable and mask is None and not self.renorm
            and not self.synchronized and self.scale and self.center
            and self._reduction_axes == [0, 1, 2]
        )  # fmt: skip
        if not fused:
            return super().call(inputs, training=training, mask=mask)
        # In float32 whatever the layer's policy, as Keras' own batch norm computes.
        inputs = tf.cast(inputs, tf.float32)
        outputs, mean, variance = tf.compat.v1.nn.fused_batch_norm(
            inputs, self.gamma, self.beta, epsilon=self.epsilon, is_training=True
        )
        # The kernel returns the unbiased variance; Keras averages the biased one.
        count = tf.cast(tf.size(inputs) // tf.shape(inputs)[-1], tf.float32)
        variance *= (count - 1.0) / count
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(
            self.moving_variance * self.momentum + variance * (1.0 - self.momentum)
        )
        return tf.cast(outputs, self.compute_dtype)


def _conv_block(filters: int, pool: bool = True) -> list[keras.layers.Layer]:
    """3x3 convolution, batch norm (folded into the convolution at export), ReLU, 2x2 pooling."""
    layers = [
        keras.layers.Conv2D(filters, 3, padding="same", use_bias=False),
        FusedBatchNormalization(),
        keras.layers.ReLU(),
    ]
    return [*layers, keras.layers.MaxPooling2D(2)] if pool else layers


def network(stages: tuple[tuple[int, ...], ...] | None) -> keras.Model:
    """The uncompiled network: the tutorial's MLP (stages None) or the CNN of these stages."""
    if stages is None:
        layers = [keras.layers.Flatten(), keras.layers.Dense(128, activation="relu"), _logits()]
    else:
        # Pooling early keeps the cost to a few MFLOPs (a single image runs in about 130
        # microseconds on one core): 28x28 → 14x14 → 7x7 (two convolutions) → 3x3. The network
        # is small enough to underfit, so one light dropout is all the regularization it gets.
        layers = _cnn_layers(stages)
    return keras.Sequential(
        [keras.Input(shape=(IMAGE_SIDE, IMAGE_SIDE), name=INPUT_NAME), *layers],
        name=REFERENCE if stages is None else cnn_name(stages),
    )


def cnn_name(stages: tuple[tuple[int, ...], ...]) -> str:
    """The card's name of a CNN: its convolutions' widths in order (cnn-32-48-64-64)."""
    return "cnn-" + "-".join(str(width) for stage in stages for width in stage)


def _cnn_layers(stages: tuple[tuple[int, ...], ...]) -> list[keras.layers.Layer]:
    blocks = [
        layer
        for stage in stages
        for i, width in enumerate(stage)
        for layer in _conv_block(width, pool=i == len(stage) - 1)
    ]
    return [
        keras.layers.Reshape((IMAGE_SIDE, IMAGE_SIDE, 1)),
        *blocks,
        keras.layers.Flatten(),
        keras.layers.Dense(128, activation="relu"),
        keras.layers.Dropout(0.25),
        _logits(),
    ]


def _logits() -> keras.layers.Layer:
    """The last layer: logits, always computed in float32 (the softmax is added at export)."""
    return keras.layers.Dense(NUM_CLASSES, dtype="float32")


def in_float32(model: keras.Model) -> keras.Model:
    """The same network with model's weights, computing in float32 throughout: a network
    trained in mixed precision is evaluated, calibrated and exported this way, so the graph
    that ships is float32 like every other version's."""
    config = model.get_config()
    for layer in config["layers"]:
        layer["config"]["dtype"] = "float32"
    twin = keras.Sequential.from_config(config)
    twin.set_weights(model.get_weights())
    return twin


def build(
    architecture: str,
    learning_rate: float,
    decay_steps: int | None = None,
    soft_labels: bool = False,
    precision: str = "float32",
    weight_decay: float = 0.0,
) -> keras.Model:
    """The named network ("mlp" or "cnn") giving logits, compiled with Adam and cross-entropy.

    With decay_steps, the learning rate follows a cosine from learning_rate down to 0 over that
    many steps instead of staying constant. With soft_labels, labels are rows of ten
    probabilities (outlier exposure's uniform rows among one-hot ones) instead of class ids.
    precision: the Keras dtype policy its layers compute in (training's --precision); the
    logits are float32 whatever it is, so the loss and everything after it are.
    weight_decay: AdamW's decoupled decay, each step shrinking the convolution kernels by
    learning rate × weight_decay (0: plain Adam).
    """
    if architecture not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {architecture!r}: use one of {ARCHITECTURES}")
    schedule = learning_rate
    if decay_steps:
        # Annealing removes the last epochs' step noise, which costs the constant-rate
        # tutorial setting about a point of test accuracy from one seed to the next.
        schedule = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps)
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(precision)  # layers take the policy when made
    try:
        model = network(CNN_STAGES.get(architecture))
    finally:
        keras.mixed_precision.set_global_policy(previous)
    if weight_decay:
        optimizer = keras.optimizers.AdamW(learning_rate=schedule, weight_decay=weight_decay)
        # Batch norm makes a convolution's output blind to its kernel's scale, so decaying the
        # kernels changes no answer, only how far a step moves them. The dense layers are
        # spared: decayed, they shrink the logits whose size the novelty score reads, and it
        # stops telling non-clothing apart (docs/models.md, "Version 13").
        optimizer.exclude_from_weight_decay(
            var_list=[
                weight
                for layer in model.layers
                if not isinstance(layer, keras.layers.Conv2D)
                for weight in layer.trainable_weights
            ]
        )
    else:
        optimizer = keras.optimizers.Adam(learning_rate=schedule)
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.CategoricalCrossentropy(from_logits=True)
        if soft_labels
        else keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def build_reference(learning_rate: float, decay_steps: int | None = None) -> keras.Model:
    """Flatten → Dense(128, ReLU) → Dense(10) logits: the classic tutorial's network."""
    return build("mlp", learning_rate, decay_steps)


def multiply_adds(layer: keras.layers.Layer) -> int:
    """Multiply-accumulates one image costs in a convolution or dense layer (0 for the rest)."""
    if isinstance(layer, keras.layers.Conv2D):
        height, width, filters = layer.output.shape[1:]
        kernel_height, kernel_width = layer.kernel_size
        channels = layer.input.shape[-1]
        return int(height * width * filters * kernel_height * kernel_width * channels)
    if isinstance(layer, keras.layers.Dense):
        return int(layer.input.shape[-1] * layer.units)
    return 0


def _line(layer: keras.layers.Layer) -> str:
    # The card describes the graph, in which fused or not it is the same batch norm.
    is_batch_norm = isinstance(layer, keras.layers.BatchNormalization)
    line = "BatchNormalization" if is_batch_norm else type(layer).__name__
    if isinstance(layer, keras.layers.Dense):
        activation = layer.activation.__name__
        line += f"({layer.units}" + (f", {activation})" if activation != "linear" else ")")
    elif isinstance(layer, keras.layers.Conv2D):
        line += f"({layer.filters}, {'x'.join(map(str, layer.kernel_size))})"
    elif isinstance(layer, keras.layers.MaxPooling2D):
        line += f"({'x'.join(map(str, layer.pool_size))})"
    elif isinstance(layer, keras.layers.Dropout):
        line += f"({layer.rate:g})"
    return f"{line} -> {tuple(layer.output.shape[1:])}"


def describe(model: keras.Model) -> dict[str, Any]:
    """The card's architecture entry: name, one line per layer, parameters, FLOPs per image.

    FLOPs count each multiply-accumulate of the convolutions and dense layers as two; batch
    norm is folded into the convolutions at export, and activations and pooling are negligible.
    """
    return {
        "name": model.name,
        "layers": [_line(layer) for layer in model.layers],
        "parameters": int(model.count_params()),
        "flops_per_image": 2 * sum(multiply_adds(layer) for layer in model.layers),
    }
