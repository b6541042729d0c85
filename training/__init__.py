"""The training job: Fashion-MNIST IDX files → Keras network → verified ONNX → model registry.

Only this package imports TensorFlow, and only in model, train and export, so that reading the
data and failing fast on bad input stay quick.
"""

# The registry root's environment variable, as the service reads it (service.settings).
MODEL_DIR_ENV = "FASHION_MODEL_DIR"


class TrainingError(Exception):
    """Base class: every error the training job raises on purpose (reported in one line)."""
