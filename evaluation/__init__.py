"""Measuring models beyond the test set: the project's photo set, its figure, the promotion gate.

TensorFlow-free: numpy and Pillow, and versions run with onnxruntime through the service's runtime.
"""
