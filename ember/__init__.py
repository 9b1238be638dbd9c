"""ember: an open deep learning compiler stack.

    mod, params = ember.frontend.from_onnx("model.onnx", shape={"data": (1, 3, 224, 224)})
    outs = ember.graph.interpret(mod, params, {"data": x})
"""

__version__ = "0.1.0"
