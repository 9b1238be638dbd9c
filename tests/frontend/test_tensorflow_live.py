"""Live TensorFlow tests: build one small graph per op family, import its frozen GraphDef
and its TFLite conversion, and compare ember's interpreter with TensorFlow on fresh inputs.

Needs TensorFlow (skipped otherwise), e.g. ``/tmp/tf-venv`` from
tests/data/make_tf_fixtures.py with ember on ``PYTHONPATH`` and pytest installed.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
tf = pytest.importorskip("tensorflow")

from tensorflow.python.framework.convert_to_constants import (  # noqa: E402
    convert_variables_to_constants_v2,
)

from ember.frontend import from_tensorflow, from_tflite  # noqa: E402
from ember.graph.interpreter import interpret  # noqa: E402

pytestmark = pytest.mark.frameworks

RNG = np.random.default_rng()
SHAPE = (1, 9, 11, 4)


def weights(*shape):
    return tf.constant(RNG.standard_normal(shape).astype(np.float32) * 0.5)


def conv(x, out_channels=6):
    return tf.nn.conv2d(x, weights(3, 3, x.shape[-1], out_channels), 1, "SAME")


CASES = {
    "resize_bilinear_align": lambda x: tf.compat.v1.image.resize_bilinear(
        conv(x), (17, 5), align_corners=True
    ),
    "resize_bilinear_half": lambda x: tf.image.resize(conv(x), (14, 20), "bilinear"),
    "resize_bilinear_asym": lambda x: tf.compat.v1.image.resize_bilinear(conv(x), (13, 7)),
    "resize_nearest_align": lambda x: tf.compat.v1.image.resize_nearest_neighbor(
        conv(x), (17, 5), align_corners=True
    ),
    "resize_nearest_half": lambda x: tf.image.resize(conv(x), (20, 14), "nearest"),
    "depth_to_space": lambda x: tf.nn.depth_to_space(conv(x, 8), 2),
    "space_to_depth": lambda x: tf.nn.space_to_depth(conv(x)[:, :8, :10, :], 2),
    "lrn": lambda x: tf.nn.local_response_normalization(conv(x, 8), 2, 1.5, 0.3, 0.6),
    "argmax": lambda x: tf.cast(tf.argmax(conv(x), axis=2), tf.float32),
    "gather": lambda x: tf.gather(conv(x), [3, 0, 3, 7], axis=2),
    "strided_slice": lambda x: conv(x)[:, ::-2, 1:9:3, 1],
    "pad_value": lambda x: tf.pad(conv(x), [[0, 0], [1, 2], [3, 0], [0, 1]], constant_values=2.5),
    "mirror_pad": lambda x: tf.pad(conv(x), [[0, 0], [2, 1], [1, 3], [0, 0]], mode="REFLECT"),
    "pools_same": lambda x: (
        tf.nn.avg_pool2d(conv(x), 3, 2, "SAME") + tf.nn.max_pool2d(conv(x), 2, 2, "SAME")
    ),
    "pool_valid": lambda x: tf.nn.avg_pool2d(conv(x), (2, 3), (1, 2), "VALID"),
    "depthwise": lambda x: tf.nn.depthwise_conv2d(x, weights(3, 3, 4, 3), (1, 2, 2, 1), "SAME"),
    "depthwise_dilated": lambda x: tf.nn.depthwise_conv2d(
        x, weights(3, 3, 4, 2), (1, 1, 1, 1), "SAME", dilations=(2, 2)
    ),
    "conv_dilated_valid": lambda x: tf.nn.conv2d(x, weights(2, 3, 4, 5), 1, "VALID", dilations=2),
    "conv_transpose": lambda x: tf.nn.conv2d_transpose(
        x, weights(3, 3, 5, 4), (1, 17, 21, 5), 2, "SAME"
    ),
    "activations": lambda x: tf.concat(
        [
            tf.nn.leaky_relu(x, 0.1),
            tf.nn.elu(x),
            tf.nn.selu(x),
            tf.nn.softplus(x),
            tf.nn.gelu(x, approximate=False),
            x * tf.nn.relu6(x + 3) / 6,
            tf.sigmoid(x),
            tf.abs(x) ** 0.5,
        ],
        axis=-1,
    ),
    "split_stack": lambda x: tf.stack(
        [tf.reduce_sum(p, axis=3) for p in tf.split(conv(x), [1, 3, 2], axis=3)], axis=1
    ),
    "unstack_tile": lambda x: tf.tile(tf.unstack(conv(x), axis=1)[4], (2, 1, 3)),
    "reductions": lambda x: tf.concat(
        [
            tf.reshape(tf.reduce_max(conv(x), axis=1), (1, -1)),
            tf.reshape(tf.reduce_min(conv(x), axis=[1, 2]), (1, -1)),
            tf.reshape(tf.reduce_mean(conv(x), axis=3, keepdims=True), (1, -1)),
            tf.reshape(tf.reduce_prod(conv(x) * 0.1 + 1, axis=2), (1, -1)),
        ],
        axis=1,
    ),
    "softmax_channels": lambda x: tf.nn.softmax(conv(x)) + tf.nn.log_softmax(conv(x)),
    "concat_height": lambda x: tf.concat([conv(x), tf.nn.relu(conv(x))], axis=1),
    "broadcast_binary": lambda x: (
        conv(x) * weights(6)
        + tf.constant(RNG.standard_normal((1, 1, 11, 1)).astype(np.float32))
        - tf.reduce_mean(conv(x), axis=[1, 2], keepdims=True)
    ),
    "math": lambda x: tf.concat(
        [
            tf.math.squared_difference(x, 0.3),
            tf.math.floordiv(x, 0.7),
            tf.maximum(x, -0.2) * tf.minimum(x, 0.4),
            tf.pow(tf.abs(x) + 1, 1.5),
            tf.exp(x) - tf.math.log(tf.abs(x) + 1),
            tf.math.rsqrt(tf.abs(x) + 1),
        ],
        axis=-1,
    ),
    "fused_batch_norm": lambda x: tf.compat.v1.nn.fused_batch_norm(
        conv(x), *(tf.abs(weights(6)) + 0.5 for _ in range(4)), is_training=False
    )[0],
    "bias_add_relu6": lambda x: tf.nn.relu6(tf.nn.bias_add(conv(x), weights(6)) * 3.0),
    "matmul_transposed": lambda x: tf.matmul(
        tf.reshape(x, (11, 36)), weights(5, 36), transpose_b=True
    ),
    "matmul_a_transposed": lambda x: tf.matmul(
        tf.reshape(x, (36, 11)), tf.reshape(x, (36, 11)), transpose_a=True
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_op_family(name):
    body = CASES[name]
    fn = tf.function(body).get_concrete_function(tf.TensorSpec(SHAPE, tf.float32, name="x"))
    x = RNG.standard_normal(SHAPE).astype(np.float32)
    ref = fn(tf.constant(x)).numpy()
    tolerance = dict(rtol=1e-4, atol=1e-4 * max(np.abs(ref).max(), 1.0))

    graph = convert_variables_to_constants_v2(fn).graph.as_graph_def()
    mod, params = from_tensorflow(graph.SerializeToString())
    (out,) = interpret(mod, params, {"x": x})
    np.testing.assert_allclose(out, ref, **tolerance, err_msg="frozen GraphDef")

    content = tf.lite.TFLiteConverter.from_concrete_functions([fn]).convert()
    mod, params = from_tflite(content)
    (out,) = interpret(mod, params, {mod.main.params[0].name: x})
    np.testing.assert_allclose(out, ref, **tolerance, err_msg="TFLite")


INT8_CASES = sorted(set(CASES) - {"argmax", "matmul_a_transposed", "lrn"})


@pytest.mark.parametrize("name", INT8_CASES)
def test_op_family_int8(name):
    """Full-integer TFLite model vs the TFLite interpreter: within one quantization step."""
    fn = tf.function(CASES[name]).get_concrete_function(tf.TensorSpec(SHAPE, tf.float32, name="x"))

    def representative():
        for _ in range(16):
            yield [RNG.standard_normal(SHAPE).astype(np.float32)]

    converter = tf.lite.TFLiteConverter.from_concrete_functions([fn])
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    content = converter.convert()

    interp = tf.lite.Interpreter(model_content=content)
    interp.allocate_tensors()
    inp, outp = interp.get_input_details()[0], interp.get_output_details()[0]
    scale, zero = inp["quantization"]
    x = RNG.standard_normal(SHAPE).astype(np.float32)
    xq = np.clip(np.round(x / scale) + zero, -128, 127).astype(np.int8)
    interp.set_tensor(inp["index"], xq)
    interp.invoke()
    ref = interp.get_tensor(outp["index"]).astype(np.int32)

    mod, params = from_tflite(content)
    (out,) = interpret(mod, params, {mod.main.params[0].name: xq})
    assert out.dtype == np.int8 and out.shape == ref.shape
    diff = np.abs(out.astype(np.int32) - ref)
    assert diff.max() <= 1, f"{(diff > 0).sum()} of {diff.size} differ, up to {diff.max()} steps"


def test_saved_model_of_a_tf_module(tmp_path):
    """tf.saved_model.save of a plain tf.Module (not Keras): variables from the checkpoint."""

    class Net(tf.Module):
        def __init__(self):
            super().__init__()
            self.kernel = tf.Variable(RNG.standard_normal((3, 3, 4, 6)).astype(np.float32))
            self.scale = tf.Variable(RNG.uniform(0.5, 1.5, 6).astype(np.float32))
            self.dense = tf.Variable(RNG.standard_normal((6, 3)).astype(np.float32))

        @tf.function(input_signature=[tf.TensorSpec((None, 9, 11, 4), tf.float32)])
        def __call__(self, image):
            y = tf.nn.relu(tf.nn.conv2d(image, self.kernel, 2, "SAME") * self.scale)
            return {"logits": tf.matmul(tf.reduce_mean(y, axis=[1, 2]), self.dense)}

    net = Net()
    tf.saved_model.save(net, str(tmp_path), signatures=net.__call__)
    x = RNG.standard_normal(SHAPE).astype(np.float32)
    ref = net(tf.constant(x))["logits"].numpy()
    mod, params = from_tensorflow(tmp_path)
    (out,) = interpret(mod, params, {"image": x})
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-5)


def test_int8_kernels_with_float_interface():
    """Full-integer kernels between a float input (QUANTIZE) and a float output (DEQUANTIZE)."""
    fn = tf.function(CASES["pools_same"]).get_concrete_function(
        tf.TensorSpec(SHAPE, tf.float32, name="x")
    )
    converter = tf.lite.TFLiteConverter.from_concrete_functions([fn])
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: (
        [RNG.standard_normal(SHAPE).astype(np.float32)] for _ in range(16)
    )
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    content = converter.convert()
    interp = tf.lite.Interpreter(model_content=content, experimental_preserve_all_tensors=True)
    interp.allocate_tensors()
    x = RNG.standard_normal(SHAPE).astype(np.float32)
    interp.set_tensor(interp.get_input_details()[0]["index"], x)
    interp.invoke()
    out_index = interp.get_output_details()[0]["index"]
    ref = interp.get_tensor(out_index)
    # the int8 tensor that the final DEQUANTIZE reads gives the output grid's step
    step = max(
        t["quantization"][0]
        for t in interp.get_tensor_details()
        if t["dtype"] == np.int8 and t["shape"].tolist() == list(ref.shape)
    )
    mod, params = from_tflite(content)
    assert mod.main.params[0].type.dtype == "float32"
    (out,) = interpret(mod, params, {mod.main.params[0].name: x})
    assert np.abs(out - ref).max() <= step * 1.001
