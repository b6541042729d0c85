"""training.model: the networks' shapes, FLOPs and learning-rate schedules."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from training.model import (
    CNN_STAGES,
    FusedBatchNormalization,
    build,
    build_reference,
    cnn_name,
    describe,
    in_float32,
)


def learning_rate_at(model, step):
    """The rate the optimizer would use for its next update after `step` updates."""
    model.optimizer.iterations.assign(step)
    return float(model.optimizer.learning_rate)


def test_reference_network_is_the_tutorial_mlp():
    card = describe(build_reference(learning_rate=1e-3))

    assert card["name"] == "mlp-128"
    assert card["layers"] == [
        "Flatten -> (784,)", "Dense(128, relu) -> (128,)", "Dense(10) -> (10,)",
    ]  # fmt: skip
    assert card["parameters"] == 784 * 128 + 128 + 128 * 10 + 10


def test_constant_rate_stays_put():
    model = build_reference(learning_rate=1e-3)

    assert learning_rate_at(model, 0) == pytest.approx(1e-3)
    assert learning_rate_at(model, 10_000) == pytest.approx(1e-3)


def test_cosine_rate_falls_from_the_start_value_to_zero_over_the_decay_steps():
    model = build_reference(learning_rate=1e-3, decay_steps=100)

    assert learning_rate_at(model, 0) == pytest.approx(1e-3)
    assert learning_rate_at(model, 50) == pytest.approx(0.5e-3, rel=1e-3)  # cos(π/2): half-way
    assert learning_rate_at(model, 100) == pytest.approx(0.0, abs=1e-9)


def test_cnn_is_four_convolutions_with_early_pooling_and_a_dense_head():
    card = describe(build("cnn", learning_rate=1e-3))

    assert card["name"] == "cnn-16-32-64-64"
    assert card["layers"][:5] == [
        "Reshape -> (28, 28, 1)", "Conv2D(16, 3x3) -> (28, 28, 16)",
        "BatchNormalization -> (28, 28, 16)", "ReLU -> (28, 28, 16)",
        "MaxPooling2D(2x2) -> (14, 14, 16)",
    ]  # fmt: skip
    assert card["layers"][-5:] == [
        "MaxPooling2D(2x2) -> (3, 3, 64)", "Flatten -> (576,)", "Dense(128, relu) -> (128,)",
        "Dropout(0.25) -> (128,)", "Dense(10) -> (10,)",
    ]  # fmt: skip
    convolutions = [(28 * 28, 1, 16), (14 * 14, 16, 32), (7 * 7, 32, 64), (7 * 7, 64, 64)]
    weights = sum(9 * cin * cout for _, cin, cout in convolutions)
    batch_norm = 4 * (16 + 32 + 64 + 64)  # gamma, beta, moving mean and variance
    dense = 3 * 3 * 64 * 128 + 128 + 128 * 10 + 10
    assert card["parameters"] == weights + batch_norm + dense
    macs = sum(pixels * 9 * cin * cout for pixels, cin, cout in convolutions)
    assert card["flops_per_image"] == 2 * (macs + 3 * 3 * 64 * 128 + 128 * 10)


def test_the_real_picture_cnn_is_the_same_layout_wider():
    cnn, real = describe(build("cnn", 1e-3)), describe(build("cnn-real", 1e-3))

    assert real["name"] == cnn_name(CNN_STAGES["cnn-real"]) == "cnn-32-48-64-64"
    assert len(real["layers"]) == len(cnn["layers"])
    assert real["flops_per_image"] > cnn["flops_per_image"]


def test_mlp_flops_are_its_two_matrix_products():
    card = describe(build_reference(learning_rate=1e-3))

    assert card["flops_per_image"] == 2 * (784 * 128 + 128 * 10)


def test_an_unknown_architecture_is_refused():
    with pytest.raises(ValueError, match="unknown architecture 'resnet'"):
        build("resnet", learning_rate=1e-3)


def test_mixed_precision_computes_in_bfloat16_and_its_float32_copy_keeps_the_weights():
    mixed = build("cnn-long", 1e-3, precision="mixed_bfloat16")
    images = np.random.default_rng(0).random((64, 28, 28), dtype=np.float32)

    assert keras.mixed_precision.global_policy().name == "float32"  # build restores it
    assert mixed.layers[1].compute_dtype == "bfloat16"  # the first convolution
    assert {w.dtype for w in mixed.weights} == {"float32"}  # weights stay float32
    assert mixed(images).dtype == "float32"  # logits, so the loss, are float32
    copy = in_float32(mixed)
    assert copy.name == mixed.name
    assert {layer.compute_dtype for layer in copy.layers} == {"float32"}
    for ours, theirs in zip(copy.get_weights(), mixed.get_weights(), strict=True):
        np.testing.assert_array_equal(ours, theirs)
    # The same function up to bfloat16's rounding (8 bits of mantissa).
    np.testing.assert_allclose(copy(images), mixed(images), atol=0.05)


def test_weight_decay_shrinks_the_convolution_kernels_alone():
    model = build("cnn", learning_rate=1e-3, weight_decay=0.5)
    rng = np.random.default_rng(0)
    for weight in model.trainable_weights:  # biases and shifts start at 0, which cannot shrink
        weight.assign(rng.standard_normal(weight.shape).astype(np.float32))
    before = {w.path: w.numpy() for w in model.trainable_weights}
    # Zero gradients leave Adam's own step at zero: what changes is the decay's doing.
    model.optimizer.apply_gradients((keras.ops.zeros_like(w), w) for w in model.trainable_weights)

    shrunk = {w.path for layer in model.layers if isinstance(layer, keras.layers.Conv2D)
              for w in layer.trainable_weights}  # fmt: skip
    assert len(shrunk) == 4  # the four convolutions' kernels (they have no biases)
    assert {path.rsplit("/", 1)[1] for path in set(before) - shrunk} == {
        "gamma", "beta", "kernel", "bias",  # batch norm's scale and shift; the dense layers'
    }  # fmt: skip
    for weight in model.trainable_weights:
        factor = 1 - 1e-3 * 0.5 if weight.path in shrunk else 1
        np.testing.assert_allclose(weight.numpy(), before[weight.path] * factor, rtol=1e-6)


def test_without_weight_decay_the_optimizer_is_adam():
    assert type(build("cnn", learning_rate=1e-3).optimizer) is keras.optimizers.Adam
    assert type(build("cnn", 1e-3, weight_decay=0.1).optimizer) is keras.optimizers.AdamW


@pytest.mark.parametrize(("policy", "tolerance"), [("float32", 1e-5), ("mixed_bfloat16", 0.02)])
def test_fused_batch_norm_trains_and_answers_as_keras_batch_norm(policy, tolerance):
    rng = np.random.default_rng(0)
    images = tf.constant(rng.normal(2.0, 3.0, (8, 7, 7, 5)), tf.float32)
    scale = rng.random(5, dtype=np.float32) + 0.5
    layers = []
    for kind in (keras.layers.BatchNormalization, FusedBatchNormalization):
        layer = kind(momentum=0.5, dtype=policy)
        layer.build(images.shape)
        layer.gamma.assign(scale)
        layer.beta.assign(np.linspace(-1, 1, 5, dtype=np.float32))
        layers.append(layer)
    results = []
    for layer in layers:
        with tf.GradientTape() as tape:
            tape.watch(images)
            outputs = layer(images, training=True)
            loss = tf.reduce_sum(tf.cast(outputs, tf.float32) ** 3)
        gradients = tape.gradient(loss, [images, layer.gamma, layer.beta])
        results.append([outputs, *gradients, layer.moving_mean, layer.moving_variance])
        results[-1].append(layer(images, training=False))  # the moving statistics applied

    assert results[1][0].dtype == results[0][0].dtype  # the policy's compute dtype
    for fused, keras_own in zip(results[1], results[0], strict=True):
        np.testing.assert_allclose(
            np.asarray(tf.cast(fused, tf.float32)), np.asarray(tf.cast(keras_own, tf.float32)),
            rtol=tolerance, atol=tolerance,
        )  # fmt: skip


def test_the_cnn_trains_its_batch_norms_fused_in_float32_copies_too():
    model = build("cnn", 1e-3)  # whose card says BatchNormalization (the four-convolutions test)

    fused = [layer for layer in model.layers if isinstance(layer, FusedBatchNormalization)]
    assert len(fused) == 4  # one after each convolution
    assert type(in_float32(model).layers[2]) is FusedBatchNormalization
