"""Typed models of the JSON response bodies: the OpenAPI document's schemas are generated from them.

They describe; they do not encode. The endpoints build plain dicts (the image endpoints encode
theirs with orjson on the hot path), and tests/http/test_openapi.py validates real responses of
every JSON operation against the schemas generated from these models.
"""

from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from service.contract import CLASS_NAMES, IMAGE_SIDE, NUM_CLASSES

from .wire import Parameters, Side

Probability = Annotated[float, Meta(ge=0, le=1)]
ClassId = Annotated[int, Meta(ge=0, le=NUM_CLASSES - 1)]
Label = Annotated[str, Meta(extra_json_schema={"enum": list(CLASS_NAMES)})]
Probabilities = Annotated[
    dict[str, Probability],
    Meta(
        description="All ten classes, in class order.",
        extra_json_schema={
            "properties": dict.fromkeys(CLASS_NAMES, msgspec.json.schema(Probability)),
            "required": list(CLASS_NAMES),
            "propertyNames": msgspec.json.schema(Label),  # these ten and no others
        },
    ),
]
Row = Annotated[list[Probability], Meta(min_length=NUM_CLASSES, max_length=NUM_CLASSES)]
Pixels = Annotated[
    list[Annotated[list[Probability], Meta(min_length=IMAGE_SIDE, max_length=IMAGE_SIDE)]],
    Meta(min_length=IMAGE_SIDE, max_length=IMAGE_SIDE),
]


class ErrorDetail(msgspec.Struct):
    """A machine-readable code (model_not_found, ...) and a message for people."""

    code: str
    message: str


class Error(msgspec.Struct):
    """The house error body."""

    error: ErrorDetail


class PlainError(msgspec.Struct):
    """The error body of the /v1 and /v2 protocols."""

    error: str


# -- the image endpoints -------------------------------------------------------------------------


class AnsweringModel(msgspec.Struct):
    """The version that answered, and the alias that chose it (null: a version was asked for)."""

    name: str
    version: int
    alias: str | None


class Prediction(msgspec.Struct):
    """The top class, its probability, all ten, and the version's judgement of the picture."""

    label: Label
    class_id: ClassId
    confidence: Probability
    probabilities: Probabilities
    in_distribution: Annotated[
        bool | None,
        Meta(
            description="false: the picture does not look like clothing to this version (its "
            "novelty is above the threshold in the version's card, set so that at most 5 % of "
            "Fashion-MNIST test images are flagged); the probabilities are still given. null: "
            "this version does not judge its inputs."
        ),
    ]
    novelty: Annotated[
        float | None,
        Meta(
            description="The score the judgement comes from: higher is less like the training "
            "data (the card's novelty entry names the method). null: no judgement."
        ),
    ]


class PredictResponse(msgspec.Struct):
    """One prediction per image, in upload order."""

    model: AnsweringModel
    predictions: list[Prediction]


class PreprocessedImage(msgspec.Struct):
    """The model's input for one image: 28×28 pixels in 0..1, and how the image was read."""

    width: Side
    height: Side
    pixels: Pixels
    mode: Literal["photo", "dataset"]


class PreprocessResponse(msgspec.Struct):
    """Each uploaded image as the model receives it."""

    images: list[PreprocessedImage]


class Layer(msgspec.Struct):
    """One hidden layer's activations."""

    name: Annotated[str, Meta(description="The tensor's name in the ONNX graph.")]
    op: Annotated[str, Meta(description="The non-linearity, e.g. Relu.")]
    kind: Literal["dense", "maps"]
    shape: Annotated[list[int], Meta(description="[units] or [C,H,W].")]
    values: Annotated[list[Any], Meta(description="Activations, 4 decimals, nested as shape.")]


class Readout(msgspec.Struct):
    """How much each unit of the last hidden layer pushed the winning class's score."""

    layer: str
    class_id: ClassId
    label: Label
    contributions: Annotated[
        list[float], Meta(description="Per unit: activation × weight to the winning class's score.")
    ]


class ActivationsResponse(msgspec.Struct):
    """The prediction for the image and every hidden layer (readout null: no dense readout)."""

    model: AnsweringModel
    prediction: Prediction
    layers: list[Layer]
    readout: Readout | None


# -- the registry --------------------------------------------------------------------------------


class ModelSummary(msgspec.Struct):
    """A model's versions and aliases; default: the model /predict serves."""

    name: str
    versions: list[int]
    aliases: dict[str, int]
    default: bool


class ModelList(msgspec.Struct):
    """Every model in the registry."""

    models: list[ModelSummary]


class VersionSummary(msgspec.Struct):
    """A version's creation time and test accuracy, as its card records them."""

    version: int
    created_at: str | None
    test_accuracy: float | None


class CanaryWeight(msgspec.Struct):
    """A second version taking a share (whole percent) of an alias's traffic."""

    version: int
    weight: Annotated[int, Meta(ge=1, le=99)]


class ModelDetail(msgspec.Struct):
    """A model's versions, aliases, each alias's earlier targets, canaries and recorded moves."""

    name: str
    versions: list[VersionSummary]
    aliases: dict[str, int]
    alias_history: dict[str, list[int]]
    canaries: dict[str, CanaryWeight]
    shadows: Annotated[
        dict[str, int], Meta(description="Each alias's shadow version (it answers a copy).")
    ]
    alias_log: Annotated[
        list[dict[str, Any]],
        Meta(
            description="Every alias move (promote, rollback, canary, canary_end, shadow,"
            " shadow_end, rollout_*), oldest first."
        ),
    ]


class Serving(msgspec.Struct):
    """Whether this worker has the version loaded, and on which device and providers."""

    loaded: bool
    device: str
    providers: list[str]
    provider_options: Annotated[
        dict[str, dict[str, str]],
        Meta(description='Options per provider (CUDA: use_tf32 "0").'),
    ]
    unfused_int8: Annotated[
        bool | None,
        Meta(
            description="true: the version's int8 weights would overflow this CPU's int8"
            " kernels (x86 without VNNI), so its quantized layers run dequantized, exact and"
            " slower; null while it is not loaded here."
        ),
    ]


class VersionCard(msgspec.Struct):
    """model.json as training wrote it (see the README), plus `serving` and `files`."""

    name: str
    version: int
    sha256: str
    serving: Serving
    files: Annotated[
        dict[str, int], Meta(description="Size in bytes of model.onnx and each stored plot.")
    ]


class CanaryChange(msgspec.Struct):
    """An alias's canary now (null: ended) and before (null: it had none)."""

    model: str
    alias: str
    canary: CanaryWeight | None
    previous: CanaryWeight | None


class ShadowChange(msgspec.Struct):
    """An alias's shadow version now (null: stopped) and before (null: it had none)."""

    model: str
    alias: str
    shadow: int | None
    previous: int | None


class ShadowComparison(msgspec.Struct):
    """How a shadow's answers compared with those served by one version of its alias."""

    alias: str
    version: Annotated[int, Meta(description="The shadow version.")]
    served_version: int
    compared: Annotated[int, Meta(description="Images both answered (FASHION_PREDICTION_TTL).")]
    agreed: int
    agreement: Probability | None
    disagreements: Annotated[
        dict[str, dict[str, int]],
        Meta(description="Images by the class served, then the shadow's other class."),
    ]


class ShadowSummary(msgspec.Struct):
    """A model's shadows (alias → version) and their agreement with the served answers."""

    model: str
    shadows: dict[str, int]
    comparisons: list[ShadowComparison]


class FeedbackAnswer(msgspec.Struct):
    """The feedback recorded, and the prediction it was joined to."""

    request_id: str
    index: int
    model: AnsweringModel
    predicted: Label
    label: Label
    correct: bool


class LiveAccuracy(msgspec.Struct):
    """Feedback received for one version within the last week, and the share answered right."""

    version: int
    feedback: int
    correct: int
    accuracy: float | None


class FeedbackSummary(msgspec.Struct):
    """Live accuracy of each version of a model that received feedback."""

    model: str
    versions: list[LiveAccuracy]


class ClassShares(msgspec.Struct):
    """The share of answers per class, live and on the test set (null: none, or no card data)."""

    live: dict[str, float] | None
    test: dict[str, float] | None


class LiveFeedback(msgspec.Struct):
    """Feedback joined to this version's answers (last week)."""

    count: int
    correct: int
    accuracy: float | None


class OutOfDistribution(msgspec.Struct):
    """Of the live answers the version judged (one with a judgement), the share it flagged not
    clothing; beside it, the share of its test set its card says it flagged (null: unknown)."""

    judged: int
    flagged: int
    live_share: Probability | None
    test_share: Probability | None


class Monitoring(msgspec.Struct):
    """A version's live answers against its test set, and its live accuracy."""

    model: str
    version: int
    answered: Annotated[int, Meta(description="Images answered within FASHION_PREDICTION_TTL.")]
    classes: ClassShares
    psi: Annotated[
        float | None, Meta(description="Population stability index, live vs test classes.")
    ]
    psi_level: Literal["stable", "moderate", "significant"] | None
    mean_confidence: float | None
    test_accuracy: float | None
    out_of_distribution: OutOfDistribution
    feedback: LiveFeedback


class AliasChange(msgspec.Struct):
    """Where the alias points now, and where it pointed before (null: it is new)."""

    model: str
    alias: str
    version: int
    previous: int | None


# -- health --------------------------------------------------------------------------------------


class Health(msgspec.Struct):
    """The process answers."""

    status: Literal["ok"]


class DefaultModel(msgspec.Struct):
    """The model and alias /predict serves."""

    model: str
    alias: str


class AliasServing(msgspec.Struct):
    """The version answering for a followed alias; degraded: not its target (refused)."""

    model: str
    alias: str
    version: int
    degraded: bool


class LoadedVersion(msgspec.Struct):
    """A version this worker holds in memory, and the providers it runs on."""

    model: str
    version: int
    providers: list[str]


class RefusedTarget(msgspec.Struct):
    """An alias target this worker refused (missing, corrupt, unloadable), why, and when."""

    model: str
    alias: str
    version: int | None
    reason: str
    at: str


class Ready(msgspec.Struct):
    """What this worker serves and what it refused."""

    ready: bool
    status: Annotated[
        Literal["ready", "degraded", "not_ready"],
        Meta(
            description="degraded: an alias's target is refused and the last good version that"
            " verifies answers instead (still ready)."
        ),
    ]
    pid: int
    default: DefaultModel
    serving: list[AliasServing]
    loaded: list[LoadedVersion]
    refused: list[RefusedTarget]


# -- the Open Inference Protocol (v2) ------------------------------------------------------------


class V2Server(msgspec.Struct):
    """Server metadata."""

    name: str
    version: str
    extensions: list[str]


class V2Live(msgspec.Struct):
    """Server liveness."""

    live: bool


class V2Ready(msgspec.Struct):
    """Server readiness."""

    ready: bool


class V2ModelReady(msgspec.Struct):
    """Model readiness."""

    name: str
    ready: bool


class TensorMetadata(msgspec.Struct):
    """A tensor's name, datatype and shape (-1: any batch size)."""

    name: str
    datatype: str
    shape: list[int]


class V2Model(msgspec.Struct):
    """Model metadata: versions, platform and the tensor signature."""

    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]


class OutputTensor(msgspec.Struct):
    """An output tensor: its data inline, or binary (parameters.binary_data_size)."""

    name: str
    datatype: str
    shape: list[int]
    parameters: Parameters | UnsetType = UNSET
    data: list[Any] | UnsetType = UNSET


class InferResponse(msgspec.Struct):
    """The inference response (id: the request's, when it gave one)."""

    model_name: str
    model_version: str
    outputs: list[OutputTensor]
    id: str | UnsetType = UNSET


# -- TensorFlow Serving (v1) ---------------------------------------------------------------------


class StatusCode(msgspec.Struct):
    """TF Serving's status of a version."""

    error_code: str
    error_message: str


class VersionStatus(msgspec.Struct):
    """One version's state."""

    version: str
    state: str
    status: StatusCode


class TfModelStatus(msgspec.Struct):
    """The version that answers, in TF Serving's model status shape."""

    model_version_status: list[VersionStatus]


class TfPredictResponse(msgspec.Struct):
    """predictions (for instances) or outputs (for inputs): ten probabilities per image."""

    predictions: list[Row] | UnsetType = UNSET
    outputs: list[Row] | UnsetType = UNSET
