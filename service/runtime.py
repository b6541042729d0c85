"""One onnxruntime session per model version: provider choice, contract check, warm-up, run."""

from collections.abc import Sequence

import numpy as np
import onnxruntime as ort
from google.protobuf.message import DecodeError

from service import cpu, onnx_graph
from service.contract import IMAGE_SIDE, INPUT_NAME, NOVELTY_NAME, NUM_CLASSES, OUTPUT_NAME
from service.deadline import NO_DEADLINE, Deadline
from service.errors import DeviceUnavailable, ModelLoadError

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
# CUDA's default TF32 matmuls drift from CPU enough to flip a top class now and then: exact FP32
# costs nothing that matters at this model's size.
CUDA_OPTIONS = {"use_tf32": "0"}

# Providers as onnxruntime takes them: a name, or (name, options).
Providers = Sequence[str | tuple[str, dict[str, str]]]


def available_providers() -> list[str]:
    """The execution providers this onnxruntime build offers on this machine."""
    return list(ort.get_available_providers())


def choose_providers(device: str, offered: Sequence[str] | None = None) -> Providers:
    """Map FASHION_DEVICE to providers; 'cuda' without CUDA is an error, never a silent fallback.

    ``offered`` defaults to what this onnxruntime build offers on this machine.
    """
    offered = available_providers() if offered is None else offered
    cuda: Providers = [(CUDA, dict(CUDA_OPTIONS)), CPU]
    if device == "cpu":
        return [CPU]
    if device == "cuda":
        if CUDA not in offered:
            raise DeviceUnavailable(
                "FASHION_DEVICE=cuda but onnxruntime offers no CUDAExecutionProvider "
                f"(offered: {', '.join(offered)}); install onnxruntime-gpu with its CUDA "
                "libraries or use FASHION_DEVICE=cpu"
            )
        return cuda
    return cuda if CUDA in offered else [CPU]


def provider_names(providers: Providers) -> list[str]:
    """The names in a providers list."""
    return [entry if isinstance(entry, str) else entry[0] for entry in providers]


def provider_options(providers: Providers) -> dict[str, dict[str, str]]:
    """The options passed to each provider of a providers list ({} for none)."""
    return {
        name: options
        for name, options in (
            (entry, {}) if isinstance(entry, str) else entry for entry in providers
        )
    }


# The largest int8 weight whose pairs of products with uint8 inputs fit a 16-bit sum.
INT8_SAFE = 64

# Larger batches run in slices of this many images: onnxruntime's arena keeps the largest run's
# working memory for the session's life, a slice answers every image exactly as a whole run, and
# the request's deadline is checked between slices (64 images: about 10 ms, bench/README.md).
RUN_SLICE = 64


def overflows_int8_kernels(model: bytes) -> bool:
    """Whether this CPU's fused int8 kernels would overflow on the model's int8 weights: 8 bits
    used, on an x86 CPU without VNNI (docs/models.md, "Version 10")."""
    if not cpu.int8_pairs_in_16_bits():
        return False
    try:
        graph = onnx_graph.parse_model(model).graph
    except (ValueError, DecodeError):  # not a graph: onnxruntime says why when it loads it
        return False
    return onnx_graph.int8_magnitude(graph) > INT8_SAFE


def _session_options(threads: int, unfused_int8: bool) -> ort.SessionOptions:
    options = ort.SessionOptions()
    # Each gunicorn worker is its own process: parallelism comes from workers, so a session
    # spinning extra threads would only fight its neighbours for the same cores.
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Spinning threads burn a core between requests; with one thread there is nothing to wake.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    if unfused_int8:  # each int8 weight dequantized to float32: the graph's own arithmetic
        options.add_session_config_entry("session.disable_quant_qdq", "1")
    return options


class OnnxModel:
    """A loaded ONNX model honouring the contract image float32 [N,28,28] → probabilities [N,10]."""

    def __init__(self, model: bytes, providers: Providers, threads: int = 1) -> None:
        # A graph the fused int8 kernels would get wrong runs exact and slower rather than fast
        # and wrong.
        self.unfused_int8 = overflows_int8_kernels(model)
        try:
            self._session = ort.InferenceSession(
                model,
                sess_options=_session_options(threads, self.unfused_int8),
                providers=list(providers),
            )
        except Exception as error:  # onnxruntime raises its own untyped errors on bad models
            raise ModelLoadError(f"onnxruntime cannot load the model: {error}") from None
        self._check_contract()
        # A graph that judges its inputs answers with its novelty in the same run.
        self.judges = NOVELTY_NAME in {o.name for o in self._session.get_outputs()}
        self._outputs = [OUTPUT_NAME, NOVELTY_NAME] if self.judges else [OUTPUT_NAME]
        self.providers: list[str] = self._session.get_providers()
        # What each provider actually runs with (e.g. CUDA's use_tf32), for the version endpoint.
        self.provider_options: dict[str, dict[str, str]] = self._session.get_provider_options()

    def _check_contract(self) -> None:
        inputs = {i.name: i for i in self._session.get_inputs()}
        outputs = {o.name: o for o in self._session.get_outputs()}
        image, probabilities = inputs.get(INPUT_NAME), outputs.get(OUTPUT_NAME)
        if (
            len(inputs) != 1
            or image is None
            or image.type != "tensor(float)"
            or list(image.shape[1:]) != [IMAGE_SIDE, IMAGE_SIDE]
        ):
            raise ModelLoadError(
                f"the model must take one input {INPUT_NAME!r} float32 [N,28,28], "
                f"it takes {[(i.name, i.type, i.shape) for i in inputs.values()]}"
            )
        if probabilities is None or list(probabilities.shape[1:]) != [NUM_CLASSES]:
            raise ModelLoadError(
                f"the model must give an output {OUTPUT_NAME!r} float32 [N,{NUM_CLASSES}], "
                f"it gives {[(o.name, o.type, o.shape) for o in outputs.values()]}"
            )
        novelty = outputs.get(NOVELTY_NAME)
        if novelty is not None and (novelty.type != "tensor(float)" or len(novelty.shape) != 1):
            raise ModelLoadError(
                f"the optional output {NOVELTY_NAME!r} must be float32 [N], "
                f"it is {novelty.type} {novelty.shape}"
            )

    def run(self, images: np.ndarray) -> np.ndarray:
        """Probabilities float32 [N,10] for images float32 [N,28,28] in 0..1."""
        return self.run_judged(images)[0]

    def run_judged(
        self, images: np.ndarray, deadline: Deadline = NO_DEADLINE
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Probabilities [N,10] and, from the same run, novelty float32 [N] (None: no output);
        the deadline is checked before each slice."""
        slices: list[list[np.ndarray]] = []
        for start in range(0, len(images), RUN_SLICE):
            deadline.check()
            batch = images[start : start + RUN_SLICE]
            slices.append(self._session.run(self._outputs, {INPUT_NAME: batch}))
        joined = (
            slices[0]
            if len(slices) == 1
            else [np.concatenate(parts) for parts in zip(*slices, strict=True)]
        )
        return joined[0], (joined[1] if self.judges else None)

    def run_outputs(self, images: np.ndarray, names: list[str]) -> list[np.ndarray]:
        """The named graph outputs (probabilities, exposed hidden layers) for images [N,28,28]."""
        outputs: list[np.ndarray] = self._session.run(names, {INPUT_NAME: images})
        return outputs

    def warm_up(self) -> None:
        """Run once on a blank batch, so the first real request pays no allocation cost.

        A model that loads but cannot run is refused here, not by every request after it.
        """
        try:
            self.run(np.zeros((1, IMAGE_SIDE, IMAGE_SIDE), dtype=np.float32))
        except Exception as error:  # onnxruntime raises its own untyped errors on bad graphs
            raise ModelLoadError(f"the model loads but cannot run: {error}") from None


def offline_model(model: bytes) -> OnnxModel:
    """A CPU session for offline batches (training, the gate, benches of accuracy): one thread
    per core this process may use. Threads split a run's work, never a sum, so every answer is
    the one-thread session's, bit for bit (tests/test_runtime.py)."""
    return OnnxModel(model, [CPU], threads=cpu.usable_cores())
