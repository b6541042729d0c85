"""Measuring models beyond the test set: the project's photo set and the promotion gate.

TensorFlow-free: it runs versions with onnxruntime through the service's own runtime.
"""
