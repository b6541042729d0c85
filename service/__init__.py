"""fashion-serve: serve Fashion-MNIST classifiers from a versioned ONNX model registry."""
