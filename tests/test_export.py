"""training.export: the ONNX file honours the contract; the parity check catches a wrong model."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from training.calibrate import energy, softmax
from training.export import ParityError, check_parity, to_onnx
from training.model import CNN_STAGES, build, build_reference, in_float32, seed_everything
from training.train import evaluate, served_logits

IMAGES = 500


@pytest.fixture(scope="module")
def images():
    """Random float32 images in 0..1 and random labels: enough to exercise the whole graph."""
    rng = np.random.default_rng(0)
    return rng.random((IMAGES, 28, 28), dtype=np.float32), rng.integers(0, 10, IMAGES)


def exported(folder, seed, images):
    """Build the reference network with seed, export it; return (onnx path, Keras probabilities)."""
    seed_everything(seed)
    model = build_reference(learning_rate=1e-3)
    path = to_onnx(model, folder / f"model-{seed}.onnx")
    return path, evaluate(model, *images).probabilities


@pytest.fixture(scope="module")
def reference(tmp_path_factory, images):
    return exported(tmp_path_factory.mktemp("export"), 1, images)


def test_onnx_has_the_contract_names_shapes_and_dtypes(reference):
    model = onnx.load(str(reference[0]))

    def signature(values):
        return [
            (
                v.name,
                v.type.tensor_type.elem_type,
                [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim],
            )
            for v in values
        ]

    assert signature(model.graph.input) == [("image", TensorProto.FLOAT, ["N", 28, 28])]
    assert signature(model.graph.output) == [("probabilities", TensorProto.FLOAT, ["N", 10])]


def test_onnx_gives_probability_rows_for_any_batch_size(reference, images):
    session = ort.InferenceSession(str(reference[0]), providers=["CPUExecutionProvider"])

    for batch in (1, 7, IMAGES):
        (probabilities,) = session.run(["probabilities"], {"image": images[0][:batch]})
        assert probabilities.shape == (batch, 10)
        assert probabilities.dtype == np.float32
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)


def test_parity_of_a_faithful_export_passes(reference, images):
    path, keras_probabilities = reference

    parity = check_parity(path, images[0], keras_probabilities)

    assert parity["images"] == IMAGES
    assert parity["max_abs_diff"] <= 1e-4
    assert parity["top1_agreement"] == 1.0


def test_parity_of_a_different_model_fails(tmp_path, reference, images):
    other_path, _ = exported(tmp_path, 2, images)  # same architecture, other weights

    with pytest.raises(ParityError, match="Keras and ONNX disagree on 500 images"):
        check_parity(other_path, images[0], reference[1])


def test_parity_refuses_a_model_that_breaks_the_contract(tmp_path, images):
    # A valid ONNX model whose input is not called "image": a registry would hold it, the
    # service could not call it.
    node = helper.make_node("Identity", ["x"], ["probabilities"])
    graph = helper.make_graph(
        [node],
        "wrong",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 28, 28])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 28, 28])],
    )
    path = tmp_path / "wrong.onnx"
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    onnx.save(model, str(path))

    with pytest.raises(ParityError, match="breaks the contract"):
        check_parity(path, images[0], np.full((IMAGES, 10), 0.1, np.float32))


def exported_session(path, seed, **options):
    """(Keras model, ONNX path, onnxruntime session) of the reference network exported with
    the options of training.export.to_onnx."""
    seed_everything(seed)
    model = build_reference(learning_rate=1e-3)
    to_onnx(model, path, **options)
    return model, path, ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_temperature_and_test_time_mirroring_in_the_graph_match_numpy(tmp_path, images):
    x = images[0][:50]
    model, path, session = exported_session(
        tmp_path / "calibrated.onnx", 3, temperature=2.5, mirror=True
    )

    (probabilities,) = session.run(["probabilities"], {"image": x})
    (of_mirrors,) = session.run(["probabilities"], {"image": np.ascontiguousarray(x[:, :, ::-1])})

    logits = model.predict(x, verbose=0) + model.predict(x[:, :, ::-1], verbose=0)
    np.testing.assert_allclose(probabilities, softmax(logits / 2 / 2.5), atol=1e-6)
    np.testing.assert_allclose(of_mirrors, probabilities, atol=1e-6)  # mirror-invariant
    # The training job's own view of the served graph passes the parity check.
    served = evaluate(model, x, images[1][:50], mirror=True, temperature=2.5)
    assert check_parity(path, x, served.probabilities)["max_abs_diff"] <= 1e-6
    # The mirror is a constant slice, not a sequence reversal sized from the input's shape.
    assert "Shape" not in {node.op_type for node in onnx.load(str(path)).graph.node}


def test_the_novelty_output_is_the_energy_of_the_calibrated_logits(tmp_path, images):
    x = images[0][:50]
    model, path, session = exported_session(
        tmp_path / "judging.onnx", 4, temperature=1.7, novelty=True
    )

    probabilities, novelty = session.run(["probabilities", "novelty"], {"image": x})

    logits = model.predict(x, verbose=0)
    np.testing.assert_allclose(novelty, energy(logits, 1.7), rtol=1e-5)
    np.testing.assert_allclose(probabilities, softmax(logits / 1.7), atol=1e-6)
    served = evaluate(model, x, images[1][:50], temperature=1.7)
    parity = check_parity(path, x, served.probabilities, energy(logits, 1.7))
    assert parity["novelty_max_relative_diff"] <= 1e-5
    with pytest.raises(ParityError, match="disagree"):
        check_parity(path, x, served.probabilities, energy(logits, 1.7) + 1.0)
    with pytest.raises(ParityError, match="breaks the contract"):  # asked without the output
        check_parity(to_onnx(model, tmp_path / "plain.onnx"), x, served.probabilities, novelty)


# One architecture per distinct layout: cnn-real and cnn-ood share theirs.
LAYOUTS = {stages: architecture for architecture, stages in CNN_STAGES.items()}


@pytest.mark.parametrize("architecture", sorted(LAYOUTS.values()))
def test_every_cnn_layout_exports_matching_keras(tmp_path, images, architecture):
    x = images[0][:50]
    seed_everything(6)
    model = build(architecture, learning_rate=1e-3)
    path = to_onnx(model, tmp_path / "cnn.onnx", temperature=1.3, novelty=True)

    served = evaluate(model, x, images[1][:50], temperature=1.3)
    parity = check_parity(path, x, served.probabilities, energy(served_logits(model, x), 1.3))

    assert parity["max_abs_diff"] <= 1e-5
    assert parity["top1_agreement"] == 1.0
    # No shape read at run time (every shape computation starts with Shape), no guards for
    # infinite logits: the flatten's target is a constant, the novelty score a plain log-sum-exp.
    operators = {node.op_type for node in onnx.load(str(path)).graph.node}
    assert not operators & {"Shape", "IsInf", "IsNaN"}


def test_a_network_trained_in_mixed_precision_ships_a_float32_graph(tmp_path, images):
    x, y = images[0][:64], images[1][:64]
    seed_everything(7)
    mixed = build("cnn-long", learning_rate=1e-3, precision="mixed_bfloat16")
    mixed.fit(x, y, batch_size=32, epochs=1, verbose=0)
    model = in_float32(mixed)
    path = to_onnx(model, tmp_path / "cnn.onnx")

    # The graph a network built in float32 with the same weights exports: no bfloat16 step.
    plain = build("cnn-long", learning_rate=1e-3)
    plain.set_weights(mixed.get_weights())
    graph = onnx.load(str(path)).graph
    expected = onnx.load(str(to_onnx(plain, tmp_path / "plain.onnx"))).graph
    assert [node.op_type for node in graph.node] == [node.op_type for node in expected.node]
    assert TensorProto.BFLOAT16 not in {tensor.data_type for tensor in graph.initializer}
    check_parity(path, x, evaluate(model, x, y).probabilities)
