"""fashion-serve: serve Fashion-MNIST classifiers from a versioned ONNX model registry."""

__version__ = "0.1.0"  # pyproject.toml reads it from here
