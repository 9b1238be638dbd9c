"""Build the small TensorFlow / TFLite fixtures used by the frontend tests.

Run it in a separate virtual environment that has TensorFlow (ember's own
environment does not need TensorFlow; the tests read only the committed files)::

    python3 -m venv /tmp/tf-venv && /tmp/tf-venv/bin/pip install tensorflow-cpu==2.21.0
    /tmp/tf-venv/bin/python tests/data/make_tf_fixtures.py

For each small Keras CNN (random weights, fixed seed) it writes:

- ``tests/data/tensorflow/<name>.pb``: a frozen GraphDef (variables folded into
  ``Const`` nodes by ``convert_variables_to_constants_v2``), input placeholder
  ``x`` of shape ``(None, H, W, C)``, and ``<name>.npz`` with ``input`` and
  ``output`` (the Keras model's output on ``input``); for a few models also
  ``saved_model_<name>/`` (``model.export``: a SavedModel with its checkpoint);
- ``tests/data/tflite/<name>.tflite`` (float32) and ``<name>_int8.tflite``
  (full-integer quantized, int8 input and output, calibrated on random inputs),
  and ``<name>.npz`` with ``input``/``output`` (float model, TFLite interpreter)
  and ``int8_input``/``int8_output`` (int8 model, TFLite interpreter).

Each model is a miniature of a classic architecture, so the fixtures cover the
ops those networks use: ResNet (residual add, strided 'SAME' conv), MobileNet
(depthwise conv, ReLU6, hard-swish, batch norm), VGG (max pool, flatten, dense),
SqueezeNet (fire modules: concat), DenseNet (dense concat, average pool) and
Inception (parallel branches, concat, 'SAME' pooling).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import layers  # noqa: E402
from tensorflow.python.framework.convert_to_constants import (  # noqa: E402
    convert_variables_to_constants_v2,
)

HERE = Path(__file__).resolve().parent
TF_DIR = HERE / "tensorflow"
TFLITE_DIR = HERE / "tflite"
SEED = 20261124


def conv_bn(x, filters, kernel, strides=1, act="relu"):
    x = layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    if act == "relu6":
        return layers.ReLU(6.0)(x)
    return layers.Activation(act)(x) if act else x


def resnet(inp):
    x = conv_bn(inp, 8, 3, strides=2)  # 'SAME' with stride 2: asymmetric padding
    for filters, strides in ((8, 1), (16, 2)):
        shortcut = x
        y = conv_bn(x, filters, 3, strides=strides)
        y = conv_bn(y, filters, 3, act=None)
        if strides != 1 or shortcut.shape[-1] != filters:
            shortcut = conv_bn(shortcut, filters, 1, strides=strides, act=None)
        x = layers.ReLU()(layers.Add()([y, shortcut]))
    x = layers.GlobalAveragePooling2D()(x)
    return layers.Dense(10, activation="softmax")(x)


def mobilenet(inp):
    x = conv_bn(inp, 8, 3, strides=2, act="relu6")
    x = layers.DepthwiseConv2D(3, padding="same", use_bias=False)(x)
    x = layers.ReLU(6.0)(layers.BatchNormalization()(x))
    x = conv_bn(x, 16, 1, act="relu6")
    x = layers.DepthwiseConv2D(3, strides=2, depth_multiplier=2, padding="same")(x)
    x = layers.Activation("hard_swish")(layers.BatchNormalization()(x))
    x = conv_bn(x, 16, 1, act=None)
    x = layers.GlobalAveragePooling2D(keepdims=True)(x)
    x = layers.Conv2D(10, 1)(x)
    x = layers.Reshape((10,))(x)
    return layers.Softmax()(x)


def vgg(inp):
    x = inp
    for filters in (8, 16):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = layers.MaxPooling2D(2)(x)
    x = layers.Flatten()(x)  # NHWC flatten order: the importer must keep it
    x = layers.Dense(32, activation="relu")(x)
    return layers.Dense(10, activation="softmax")(x)


def fire(x, squeeze, expand):
    s = layers.Conv2D(squeeze, 1, activation="relu")(x)
    e1 = layers.Conv2D(expand, 1, activation="relu")(s)
    e3 = layers.Conv2D(expand, 3, padding="same", activation="relu")(s)
    return layers.Concatenate()([e1, e3])


def squeezenet(inp):
    x = layers.Conv2D(16, 3, strides=2, activation="relu")(inp)  # 'VALID'
    x = layers.MaxPooling2D(3, strides=2)(x)
    x = fire(x, 4, 8)
    x = fire(x, 4, 8)
    x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
    x = fire(x, 8, 16)
    x = layers.Conv2D(10, 1, activation="relu")(x)
    x = layers.GlobalAveragePooling2D()(x)
    return layers.Softmax()(x)


def densenet(inp):
    x = conv_bn(inp, 8, 3)
    for _ in range(2):  # dense block: each layer's output is concatenated to its input
        y = layers.ReLU()(layers.BatchNormalization()(x))
        y = layers.Conv2D(4, 3, padding="same", use_bias=False)(y)
        x = layers.Concatenate()([x, y])
    x = layers.ReLU()(layers.BatchNormalization()(x))  # transition
    x = layers.Conv2D(8, 1, use_bias=False)(x)
    x = layers.AveragePooling2D(2)(x)
    x = layers.GlobalAveragePooling2D()(x)
    return layers.Dense(10)(x)


def inception(inp):
    x = conv_bn(inp, 8, 3, strides=2)
    b1 = conv_bn(x, 4, 1)
    b2 = conv_bn(conv_bn(x, 4, 1), 6, 3)
    b3 = conv_bn(conv_bn(x, 2, 1), 4, 5)
    b4 = conv_bn(layers.AveragePooling2D(3, strides=1, padding="same")(x), 4, 1)
    x = layers.Concatenate()([b1, b2, b3, b4])
    x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
    x = layers.Conv2D(8, (1, 3), padding="same", activation="tanh")(x)
    x = layers.Conv2D(8, (3, 1), padding="same", activation="sigmoid")(x)
    x = layers.LeakyReLU(negative_slope=0.2)(x)
    x = layers.GlobalMaxPooling2D()(x)
    return layers.Dense(10)(x)


def fully_convolutional(inp):
    """A model with unknown spatial dims: importing it needs ``shape=``."""
    x = layers.Conv2D(4, 3, padding="same", activation="relu")(inp)
    return layers.Conv2D(2, 1)(x)


def conv_ops(inp):
    """Convolution variants and the layers around them."""
    x = layers.ZeroPadding2D(((1, 2), (0, 1)))(inp)
    x = layers.Conv2D(8, 3, dilation_rate=2, padding="same")(x)
    x = layers.PReLU(shared_axes=[1, 2])(x)
    x = layers.Conv2D(8, 3, groups=2, padding="valid", activation="elu")(x)
    x = layers.SeparableConv2D(8, 3, padding="same", activation="relu")(x)
    x = layers.Conv2DTranspose(6, 3, strides=2, padding="same")(x)
    x = layers.Cropping2D(((1, 0), (2, 1)))(x)
    x = layers.Conv2D(4, 3, strides=3, activation="selu")(x)
    x = layers.UpSampling2D(2)(x)
    x = layers.Conv2DTranspose(4, 2, strides=2, padding="valid")(x)
    return layers.Conv2D(4, 1, activation="softplus")(x)


def tensor_ops(inp):
    """Shape and data-movement ops: resize, transpose, split, slices, reductions, matmul."""
    x = layers.Conv2D(8, 3, padding="same")(inp)
    a = keras.ops.image.resize(x, (20, 12), interpolation="bilinear")
    b = keras.ops.image.resize(x, (24, 24), interpolation="nearest")
    a = keras.ops.transpose(a, (0, 2, 1, 3))  # (1, 12, 20, 8)
    a = keras.ops.split(a, 2, axis=-1)
    b = keras.ops.pad(b[:, 2:14:2, 1:-1:2, :], ((0, 0), (1, 1), (2, 2), (0, 0)), mode="reflect")
    c = keras.ops.max(a[0], axis=1) + keras.ops.min(a[1], axis=1)  # (1, 20, 4)
    d = keras.ops.sum(keras.ops.square(b - 0.5), axis=(1, 2))  # (1, 8)
    f = keras.ops.softmax(x, axis=-1)[:, 0, :, :]  # shrink axis
    f = keras.ops.mean(keras.ops.exp(f), axis=1)
    parts = [keras.ops.reshape(t, (1, -1)) for t in (c, d, f)]
    y = keras.ops.concatenate(parts, axis=1)
    return keras.ops.maximum(keras.ops.minimum(y, 50.0), -50.0)


def matmul_ops(inp):
    """Batched matmuls (plain, transposed operands) and a dense layer on a 3-D tensor.

    Float only: TFLite 2.21's int8 BATCH_MATMUL returns wrong values on these
    (checked against the float model), so there is no int8 fixture to compare to.
    """
    x = layers.Reshape((16, 12))(layers.Conv2D(4, 3, padding="same")(inp))  # (1, 16, 12)
    a = keras.ops.matmul(keras.ops.transpose(x, (0, 2, 1)), x)  # (1, 12, 12)
    b = keras.ops.matmul(x, keras.ops.transpose(x, (0, 2, 1)))  # (1, 16, 16)
    c = layers.Dense(5)(x)  # dense on the last axis of a 3-D tensor
    parts = [keras.ops.reshape(t, (1, -1)) for t in (a, b, c)]
    return keras.ops.tanh(keras.ops.concatenate(parts, axis=1) * 0.1)


MODELS = {
    "resnet": (resnet, (32, 32, 3)),
    "mobilenet": (mobilenet, (32, 32, 3)),
    "vgg": (vgg, (32, 32, 3)),
    "squeezenet": (squeezenet, (48, 48, 3)),
    "densenet": (densenet, (24, 24, 3)),
    "inception": (inception, (32, 32, 3)),
    "conv_ops": (conv_ops, (17, 15, 3)),
    "tensor_ops": (tensor_ops, (12, 12, 3)),
    "matmul_ops": (matmul_ops, (8, 6, 3)),
}
FLOAT_ONLY = {"matmul_ops"}
SAVED_MODELS = {"resnet", "conv_ops"}  # also exported as SavedModel directories


def randomize_batch_norm(model: keras.Model, rng: np.random.Generator) -> None:
    """Give BN layers non-trivial statistics so that a wrong BN import shows."""
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights(
                [
                    rng.uniform(0.5, 1.5, gamma.shape).astype("float32"),
                    rng.normal(0, 0.2, beta.shape).astype("float32"),
                    rng.normal(0, 0.2, mean.shape).astype("float32"),
                    rng.uniform(0.5, 1.5, var.shape).astype("float32"),
                ]
            )


def build(name: str, seed: int, input_shape=None) -> keras.Model:
    builder, default_shape = MODELS.get(name, (fully_convolutional, None))
    keras.utils.set_random_seed(seed)
    inp = keras.Input(shape=input_shape or default_shape, name="x")
    model = keras.Model(inp, builder(inp), name=name)
    randomize_batch_norm(model, np.random.default_rng(seed))
    return model


def frozen_graph(model: keras.Model) -> tf.compat.v1.GraphDef:
    spec = tf.TensorSpec((None, *model.input_shape[1:]), tf.float32, name="x")
    fn = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec)
    return convert_variables_to_constants_v2(fn).graph.as_graph_def()


def tflite_models(model: keras.Model, rng: np.random.Generator) -> tuple[bytes, bytes]:
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    float_model = converter.convert()
    shape = (1, *model.input_shape[1:])

    def representative():
        for _ in range(32):
            yield [rng.uniform(-1, 1, shape).astype("float32")]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    return float_model, converter.convert()


def run_tflite(content: bytes, x: np.ndarray) -> np.ndarray:
    interp = tf.lite.Interpreter(model_content=content)
    inp = interp.get_input_details()[0]
    if list(inp["shape"]) != list(x.shape):
        interp.resize_tensor_input(inp["index"], x.shape)
    interp.allocate_tensors()
    interp.set_tensor(inp["index"], x)
    interp.invoke()
    return interp.get_tensor(interp.get_output_details()[0]["index"])


def main() -> None:
    TF_DIR.mkdir(exist_ok=True)
    TFLITE_DIR.mkdir(exist_ok=True)
    for index, name in enumerate(MODELS):
        rng = np.random.default_rng(SEED + index)
        model = build(name, SEED + index)
        x = rng.uniform(-1, 1, (1, *model.input_shape[1:])).astype("float32")

        (TF_DIR / f"{name}.pb").write_bytes(frozen_graph(model).SerializeToString())
        np.savez(TF_DIR / f"{name}.npz", input=x, output=model(x, training=False).numpy())
        if name in SAVED_MODELS:
            target = TF_DIR / f"saved_model_{name}"
            shutil.rmtree(target, ignore_errors=True)
            model.export(str(target), format="tf_saved_model", verbose=False)

        float_model, int8_model = tflite_models(model, rng)
        (TFLITE_DIR / f"{name}.tflite").write_bytes(float_model)
        if name in FLOAT_ONLY:
            np.savez(TFLITE_DIR / f"{name}.npz", input=x, output=run_tflite(float_model, x))
            print(f"{name}: done")
            continue
        (TFLITE_DIR / f"{name}_int8.tflite").write_bytes(int8_model)
        scale, zero_point = tf.lite.Interpreter(model_content=int8_model).get_input_details()[0][
            "quantization"
        ]
        xq = np.clip(np.round(x / scale) + zero_point, -128, 127).astype("int8")
        np.savez(
            TFLITE_DIR / f"{name}.npz",
            input=x,
            output=run_tflite(float_model, x),
            int8_input=xq,
            int8_output=run_tflite(int8_model, xq),
        )
        print(f"{name}: done")

    # other TFLite model forms, on the ResNet-style model
    rng = np.random.default_rng(SEED)
    model = build("resnet", SEED)
    x = rng.uniform(-1, 1, (1, *model.input_shape[1:])).astype("float32")
    variants = {}
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_types = [tf.float16]
    variants["fp16"] = converter.convert()  # float16 weights + DEQUANTIZE ops
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    variants["dynamic_range"] = converter.convert()  # int8 weights, float activations
    outputs = {}
    for key, content in variants.items():
        (TFLITE_DIR / f"resnet_{key}.tflite").write_bytes(content)
        outputs[key] = run_tflite(content, x)

    def representative():
        for _ in range(32):
            yield [rng.uniform(-1, 1, x.shape).astype("float32")]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.uint8  # uint8 interface around int8 kernels
    converter.inference_output_type = tf.uint8
    content = converter.convert()
    (TFLITE_DIR / "resnet_uint8.tflite").write_bytes(content)
    scale, zero_point = tf.lite.Interpreter(model_content=content).get_input_details()[0][
        "quantization"
    ]
    xq = np.clip(np.round(x / scale) + zero_point, 0, 255).astype("uint8")
    np.savez(
        TFLITE_DIR / "resnet_variants.npz",
        input=x,
        uint8_input=xq,
        uint8_output=run_tflite(content, xq),
        **outputs,
    )
    print("variants: done")

    # dynamic spatial dims: only for error tests (no reference outputs needed)
    model = build("dynamic", SEED, input_shape=(None, None, 3))
    (TF_DIR / "dynamic.pb").write_bytes(frozen_graph(model).SerializeToString())
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    (TFLITE_DIR / "dynamic.tflite").write_bytes(converter.convert())

    # ops ember does not support (cumulative sum, top-k): for the error tests
    @tf.function(input_signature=[tf.TensorSpec((1, 16), tf.float32, name="x")])
    def unsupported(x):
        values, _ = tf.math.top_k(tf.math.cumsum(x, axis=1), k=4)
        return tf.math.cumsum(tf.nn.relu(values), axis=1)

    fn = unsupported.get_concrete_function()
    graph = convert_variables_to_constants_v2(fn).graph.as_graph_def()
    (TF_DIR / "unsupported.pb").write_bytes(graph.SerializeToString())
    converter = tf.lite.TFLiteConverter.from_concrete_functions([fn])
    (TFLITE_DIR / "unsupported.tflite").write_bytes(converter.convert())
    print("dynamic, unsupported: done")


if __name__ == "__main__":
    main()
