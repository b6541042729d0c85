"""Temperature scaling: fit one temperature on held-out logits; ECE and NLL before and after.

A network trained with cross-entropy is over-confident on data it has not seen; dividing its
logits by one temperature T > 1, fitted to minimise the negative log-likelihood of held-out
images, fixes most of that without changing any answer's top class. numpy only: the service's
measurements (evaluation/) use the same ECE.
"""

import numpy as np

ECE_BINS = 15
# log T is searched in this range; T = e^±3 is far beyond any network worth shipping.
LOG_T_RANGE = (-3.0, 3.0)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64, shifted by the row maximum so nothing overflows."""
    shifted = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    probabilities: np.ndarray = exp / exp.sum(axis=1, keepdims=True)
    return probabilities


def nll(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Mean negative log-likelihood of the true classes."""
    picked = probabilities[np.arange(len(labels)), labels].astype(np.float64)
    return float(-np.log(np.maximum(picked, 1e-12)).mean())


def reliability(
    probabilities: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS
) -> list[dict[str, float]]:
    """Per equal-width confidence bin: count, mean confidence and accuracy (empty bins left out)."""
    confidence = probabilities.max(axis=1)
    right = probabilities.argmax(axis=1) == labels
    # Bin i holds confidences in (i/bins, (i+1)/bins]; a confidence of exactly 0 joins bin 0.
    index = np.clip(np.ceil(confidence * bins).astype(np.int64) - 1, 0, bins - 1)
    table = []
    for i in range(bins):
        inside = index == i
        if inside.any():
            table.append({
                "low": i / bins,
                "high": (i + 1) / bins,
                "count": int(inside.sum()),
                "confidence": float(confidence[inside].mean()),
                "accuracy": float(right[inside].mean()),
            })  # fmt: skip
    return table


def ece(probabilities: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> float:
    """Expected calibration error: |accuracy - confidence| averaged over bins, by bin size."""
    table = reliability(probabilities, labels, bins)
    return float(sum(r["count"] * abs(r["accuracy"] - r["confidence"]) for r in table)) / len(
        labels
    )


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature minimising the NLL of softmax(logits / T): golden-section search on log T.

    The NLL is convex in 1/T, hence unimodal in log T, so the search finds its minimum.
    """
    low, high = LOG_T_RANGE
    ratio = (np.sqrt(5) - 1) / 2

    def loss(log_t: float) -> float:
        return nll(softmax(logits / np.exp(log_t)), labels)

    a, b = low + (1 - ratio) * (high - low), low + ratio * (high - low)
    loss_a, loss_b = loss(a), loss(b)
    while high - low > 1e-5:
        if loss_a < loss_b:
            high, b, loss_b = b, a, loss_a
            a = low + (1 - ratio) * (high - low)
            loss_a = loss(a)
        else:
            low, a, loss_a = a, b, loss_b
            b = low + ratio * (high - low)
            loss_b = loss(b)
    return round(float(np.exp((low + high) / 2)), 6)


def energy(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """The novelty score the graph exports: -logsumexp(logits / T), float32 [N].

    Higher means less like the training data: a network trained with outlier exposure keeps
    its logits low on everything that is not clothing.
    """
    scaled = logits.astype(np.float64) / temperature
    peak = scaled.max(axis=1)
    scores: np.ndarray = -(peak + np.log(np.exp(scaled - peak[:, None]).sum(axis=1)))
    return scores.astype(np.float32)


def summary(logits: np.ndarray, labels: np.ndarray, temperature: float) -> dict[str, float]:
    """ECE and NLL of the raw softmax and of the temperature-scaled one."""
    before, after = softmax(logits), softmax(logits / temperature)
    return {
        "ece_before": round(ece(before, labels), 6),
        "ece_after": round(ece(after, labels), 6),
        "nll_before": round(nll(before, labels), 6),
        "nll_after": round(nll(after, labels), 6),
    }
