"""Test helpers: the model zoo (``ember.testing.zoo``) and its ONNX graph builder.

from ember.testing import zoo
mod, params = zoo.get("resnet18", **zoo.SMALL["resnet18"])
"""
