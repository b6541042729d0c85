"""onnxruntime sessions: provider choice, contract enforcement, and numerically right answers."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from service import cpu
from service.activations import plan
from service.errors import DeviceUnavailable, ModelLoadError
from service.preprocess import normalize
from service.registry import Registry
from service.runtime import (
    CPU,
    CUDA,
    RUN_SLICE,
    OnnxModel,
    available_providers,
    choose_providers,
    offline_model,
    overflows_int8_kernels,
    provider_names,
    provider_options,
)
from tests.shipped import SHIPPED
from tests.tiny_models import novelty_model_bytes, tiny_mlp, tiny_model_bytes
from training import data


def test_cpu_is_always_offered():
    assert CPU in available_providers()
    assert choose_providers("cpu") == [CPU]


def test_auto_uses_cuda_only_when_offered():
    expected = [(CUDA, {"use_tf32": "0"}), CPU] if CUDA in available_providers() else [CPU]
    assert choose_providers("auto") == expected


@pytest.mark.parametrize("device", ["cuda", "auto"])
def test_cuda_runs_without_tf32_matmuls(device):
    """Issue 12.7: CUDA's default TF32 moved answers by up to 9.9e-4 from CPU's."""
    providers = choose_providers(device, offered=[CUDA, CPU])
    assert providers == [(CUDA, {"use_tf32": "0"}), CPU]
    assert provider_options(providers) == {CUDA: {"use_tf32": "0"}, CPU: {}}
    assert provider_names(providers) == [CUDA, CPU]


@pytest.mark.skipif(CUDA in available_providers(), reason="this machine has CUDA")
def test_cuda_without_cuda_fails_loudly_instead_of_falling_back():
    with pytest.raises(DeviceUnavailable, match="CUDAExecutionProvider"):
        choose_providers("cuda")


def test_run_matches_numpy_reference_and_reports_providers():
    model = OnnxModel(tiny_model_bytes(3), [CPU])
    images = np.random.default_rng(0).random((5, 28, 28), dtype=np.float32)
    probabilities = model.run(images)
    assert probabilities.shape == (5, 10)
    assert probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    # The same linear model in numpy: the session must compute exactly this.
    rng = np.random.default_rng(3)
    weights = rng.normal(0, 0.5, (784, 10)).astype(np.float32)
    bias = rng.normal(0, 0.1, 10).astype(np.float32)
    logits = images.reshape(5, -1) @ weights + bias
    expected = np.exp(logits - logits.max(1, keepdims=True))
    expected /= expected.sum(1, keepdims=True)
    np.testing.assert_allclose(probabilities, expected, atol=1e-5)
    assert model.providers == [CPU]


def test_a_batch_larger_than_a_slice_answers_every_image_as_alone():
    """Batches run in slices (bounded arena memory): order and values must be as image by image."""
    model = OnnxModel(tiny_mlp()[0], [CPU])
    count = 2 * RUN_SLICE + 3
    images = np.random.default_rng(1).random((count, 28, 28), dtype=np.float32)
    probabilities = model.run(images)
    assert probabilities.shape == (count, 10)
    alone = np.concatenate([model.run(images[index : index + 1]) for index in range(count)])
    np.testing.assert_allclose(probabilities, alone, rtol=0, atol=1e-6)
    assert len({tuple(row) for row in probabilities.tolist()}) == count  # no slice repeated


def test_warm_up_refuses_a_model_that_loads_but_cannot_run():
    OnnxModel(tiny_model_bytes(0), [CPU]).warm_up()
    broken = OnnxModel(tiny_model_bytes(0, rows=3), [CPU])  # honours the contract on paper
    with pytest.raises(ModelLoadError, match="loads but cannot run"):
        broken.warm_up()


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (b"not an onnx model", "cannot load"),
        (b"", "cannot load"),
        (tiny_model_bytes(0, input_name="pixels"), "input 'image'"),
        (tiny_model_bytes(0, side=14), "input 'image'"),
    ],
)
def test_models_breaking_the_contract_are_refused(model, message):
    with pytest.raises(ModelLoadError, match=message):
        OnnxModel(model, [CPU])


def test_run_outputs_reads_an_exposed_hidden_layer_beside_the_probabilities():
    model_bytes, w = tiny_mlp(seed=2, hidden=8)
    model = OnnxModel(plan(model_bytes).model, [CPU])
    images = np.random.default_rng(1).random((3, 28, 28), dtype=np.float32)
    probabilities, hidden = model.run_outputs(images, ["probabilities", "hidden"])
    np.testing.assert_allclose(
        hidden, np.maximum(images.reshape(3, -1) @ w["w1"] + w["b1"], 0), atol=1e-5
    )
    np.testing.assert_allclose(probabilities, model.run(images), atol=1e-7)


def test_a_judging_model_gives_both_outputs_from_one_run_in_every_slice():
    mean = np.full((28, 28), 0.25, np.float32)
    model = OnnxModel(novelty_model_bytes(3, mean), [CPU])
    plain = OnnxModel(tiny_model_bytes(0), [CPU])
    assert model.judges
    assert not plain.judges
    count = RUN_SLICE + 5
    images = np.random.default_rng(2).random((count, 28, 28), dtype=np.float32)
    probabilities, novelty = model.run_judged(images)
    assert probabilities.shape == (count, 10)
    assert novelty.shape == (count,)
    expected = ((images - mean) ** 2).reshape(count, -1).mean(axis=1)
    np.testing.assert_allclose(novelty, expected, rtol=1e-5)
    np.testing.assert_array_equal(probabilities, model.run(images))
    assert plain.run_judged(images)[1] is None


def test_a_novelty_output_of_the_wrong_shape_is_refused():
    model = onnx.load_from_string(novelty_model_bytes(3, np.zeros((28, 28), np.float32)))
    (reduce,) = [node for node in model.graph.node if node.op_type == "ReduceMean"]
    reduce.attribute[[a.name for a in reduce.attribute].index("keepdims")].i = 1  # [N,1]
    model.graph.output[1].type.tensor_type.shape.dim.add().dim_value = 1
    with pytest.raises(ModelLoadError, match="'novelty' must be float32 \\[N\\]"):
        OnnxModel(model.SerializeToString(), [CPU])


AVX2 = "processor\t: 0\nflags\t\t: fpu sse2 avx fma avx2\n"
VNNI = "processor\t: 0\nflags\t\t: fpu sse2 avx fma avx2 avx512f avx512_vnni\n"


@pytest.mark.parametrize(
    ("version", "cpuinfo", "unfused"),
    [
        (9, AVX2, True),  # 8-bit int8 weights: the fused kernels would overflow
        (9, VNNI, False),  # summed in 32 bits: fused is exact
        (10, AVX2, False),  # 7-bit weights fit the 16-bit sums
        (8, AVX2, False),  # float32
    ],
)
def test_int8_weights_this_cpu_would_overflow_run_unfused(
    version, cpuinfo, unfused, tmp_path, monkeypatch
):
    (tmp_path / "cpuinfo").write_text(cpuinfo)
    monkeypatch.setattr(cpu, "CPUINFO", tmp_path / "cpuinfo")
    model_bytes = Registry(SHIPPED).read_verified("fashion-mnist", version)

    assert OnnxModel(model_bytes, [CPU]).unfused_int8 is unfused
    assert overflows_int8_kernels(model_bytes) is unfused


@pytest.mark.skipif(
    not data.DEFAULT_DIR.is_dir(),
    reason=f"needs Debian's dataset-fashion-mnist in {data.DEFAULT_DIR}",
)
def test_an_unfused_int8_graph_answers_with_its_own_arithmetic(tmp_path, monkeypatch):
    """Version 9 on a CPU without VNNI: the same answers as onnxruntime with every graph
    optimization off (each weight dequantized, float32 convolutions), its card's 0.9325."""
    (tmp_path / "cpuinfo").write_text(AVX2)
    monkeypatch.setattr(cpu, "CPUINFO", tmp_path / "cpuinfo")
    model_bytes = Registry(SHIPPED).read_verified("fashion-mnist", 9)
    images = normalize(data.load(data.DEFAULT_DIR).test_images[:1000])  # fused: 29 differ
    plain = ort.SessionOptions()
    plain.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    reference = ort.InferenceSession(model_bytes, plain, providers=[CPU])

    answers = OnnxModel(model_bytes, [CPU]).run(images)

    expected = reference.run(["probabilities"], {"image": images})[0]
    assert (answers.argmax(axis=1) == expected.argmax(axis=1)).all()
    # Fused float kernels may round an activation to the next int8 step: a few thousandths.
    np.testing.assert_allclose(answers, expected, atol=0.01)


@pytest.mark.skipif(
    not data.DEFAULT_DIR.is_dir(),
    reason=f"needs Debian's dataset-fashion-mnist in {data.DEFAULT_DIR}",
)
@pytest.mark.parametrize("version", [8, 12])  # float32, int8
@pytest.mark.parametrize("threads", [2, 4, None])  # None: offline_model's own count
def test_more_threads_give_the_one_thread_answers_bit_for_bit(version, threads):
    """The training job and the gate run sessions on every core (offline_model): their answers
    must be those of the service's one-thread session, or a teacher or gate would see others."""
    model_bytes = Registry(SHIPPED).read_verified("fashion-mnist", version)
    images = normalize(data.load(data.DEFAULT_DIR).test_images[:512])
    one = OnnxModel(model_bytes, [CPU], threads=1).run_judged(images)
    many = (
        offline_model(model_bytes)
        if threads is None
        else OnnxModel(model_bytes, [CPU], threads=threads)
    ).run_judged(images)
    assert np.array_equal(one[0], many[0])
    assert np.array_equal(one[1], many[1])
