"""Run a Keras emotion model through ONNX Runtime: ~3-5x faster per face at batch 1 on a CPU.

`to_onnx` walks the Keras functional graph (nested models included) and writes the same
computation as ONNX operators, in NCHW order; `OnnxRunner` runs it. The layers our
architectures use are covered (convolutions, batch norm, pooling, residual adds, padding,
rescaling, bilinear resizing, dense, softmax); anything else raises `UnsupportedLayer` and the
caller keeps the Keras path. Nothing is written to disk.
"""

from __future__ import annotations

import numpy as np


class UnsupportedLayer(ValueError):
    """The model holds a layer this converter does not translate."""


class _Graph:
    """Accumulates ONNX nodes and initializers with unique names."""

    def __init__(self) -> None:
        self.nodes: list = []
        self.initializers: list = []
        self._count = 0

    def name(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def const(self, array: np.ndarray, hint: str) -> str:
        from onnx import numpy_helper

        name = self.name(hint)
        self.initializers.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def op(self, op_type: str, inputs: list[str], hint: str, **attrs) -> str:
        from onnx import helper

        out = self.name(hint)
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out


def _weights(layer) -> list[np.ndarray]:
    return [np.asarray(w, dtype=np.float32) for w in layer.get_weights()]


def _pads(padding) -> list[int]:
    (top, bottom), (left, right) = padding
    return [0, 0, top, left, 0, 0, bottom, right]


def _convert_layer(g: _Graph, layer, x: list[str], layout: str) -> tuple[str, str]:
    """ONNX nodes for one Keras layer; returns (output name, its layout: NCHW or flat)."""
    kind = type(layer).__name__
    name = layer.name
    if kind in ("Dropout", "InputLayer"):
        return x[0], layout
    if kind == "Rescaling":
        scaled = g.op("Mul", [x[0], g.const(np.float32(layer.scale), "scale")], name)
        if layer.offset:
            scaled = g.op("Add", [scaled, g.const(np.float32(layer.offset), "offset")], name)
        return scaled, layout
    if kind == "Resizing":
        if layer.interpolation != "bilinear" or layer.antialias or layer.crop_to_aspect_ratio:
            raise UnsupportedLayer(f"{name}: only plain bilinear resizing")
        shape = g.op("Shape", [x[0]], "shape")
        batch_channels = g.op(
            "Slice",
            [shape, g.const(np.array([0], np.int64), "s"), g.const(np.array([2], np.int64), "e")],
            "nc",
        )
        hw = g.const(np.array([layer.height, layer.width], np.int64), "hw")
        full = g.op("Concat", [batch_channels, hw], "sizes", axis=0)
        out = g.op(
            "Resize",
            [x[0], "", "", full],
            name,
            mode="linear",
            coordinate_transformation_mode="half_pixel",
        )
        return out, layout
    if kind == "ZeroPadding2D":
        return g.op("Pad", [x[0], g.const(np.array(_pads(layer.padding), np.int64), "pads")],
                    name), layout  # fmt: skip
    if kind == "Conv2D":
        if layer.groups != 1 or tuple(layer.dilation_rate) != (1, 1):
            raise UnsupportedLayer(f"{name}: grouped or dilated convolution")
        weights = _weights(layer)
        kernel = g.const(weights[0].transpose(3, 2, 0, 1), "kernel")
        inputs = [x[0], kernel] + ([g.const(weights[1], "bias")] if layer.use_bias else [])
        padding = "SAME_UPPER" if layer.padding == "same" else "VALID"
        out = g.op(
            "Conv",
            inputs,
            name,
            kernel_shape=list(layer.kernel_size),
            strides=list(layer.strides),
            auto_pad=padding,
        )
        return _activation(g, layer, out), layout
    if kind == "BatchNormalization":
        weights = _weights(layer)
        channels = weights[-1].shape[0]
        gamma = weights.pop(0) if layer.scale else np.ones(channels, np.float32)
        beta = weights.pop(0) if layer.center else np.zeros(channels, np.float32)
        mean, var = weights
        args = [g.const(a, "bn") for a in (gamma, beta, mean, var)]
        return g.op("BatchNormalization", [x[0], *args], name, epsilon=float(layer.epsilon)), layout
    if kind in ("Activation", "ReLU"):
        return _activation(g, layer, x[0]), layout
    if kind in ("MaxPooling2D", "AveragePooling2D"):
        op = "MaxPool" if kind == "MaxPooling2D" else "AveragePool"
        padding = "SAME_UPPER" if layer.padding == "same" else "VALID"
        return g.op(
            op,
            [x[0]],
            name,
            kernel_shape=list(layer.pool_size),
            strides=list(layer.strides),
            auto_pad=padding,
        ), layout
    if kind == "GlobalAveragePooling2D":
        pooled = g.op("GlobalAveragePool", [x[0]], name)
        return g.op("Flatten", [pooled], name), "flat"
    if kind == "Flatten":
        nhwc = g.op("Transpose", [x[0]], name, perm=[0, 2, 3, 1])  # Keras flattens HWC
        return g.op("Flatten", [nhwc], name), "flat"
    if kind == "Dense":
        weights = _weights(layer)
        inputs = [x[0], g.const(weights[0], "w")]
        out = g.op("MatMul", inputs, name)
        if layer.use_bias:
            out = g.op("Add", [out, g.const(weights[1], "b")], name)
        return _activation(g, layer, out), "flat"
    if kind == "Add":
        out = x[0]
        for other in x[1:]:
            out = g.op("Add", [out, other], name)
        return out, layout
    if kind == "Concatenate":
        axis = 1 if layout == "NCHW" else -1
        return g.op("Concat", x, name, axis=axis), layout
    raise UnsupportedLayer(f"{name}: {kind} is not translated to ONNX")


def _activation(g: _Graph, layer, x: str) -> str:
    activation = getattr(layer, "activation", None)
    kind = type(layer).__name__
    if kind == "ReLU":
        return g.op("Relu", [x], layer.name)
    name = getattr(activation, "__name__", "linear")
    if name == "linear":
        return x
    if name == "relu":
        return g.op("Relu", [x], layer.name)
    if name == "softmax":
        return g.op("Softmax", [x], layer.name, axis=-1)
    raise UnsupportedLayer(f"{layer.name}: activation {name}")


def _walk(g: _Graph, model, names: dict[int, tuple[str, str]]) -> None:
    """Emit every operation of a functional `model`; `names` maps KerasTensor ids to ONNX names
    (the model's inputs must already be in it). Nested functional models are inlined."""
    for operation in model.operations:
        node = operation._inbound_nodes[0]
        if type(operation).__name__ == "InputLayer":
            continue
        inputs = [names[id(t)] for t in node.input_tensors]
        if hasattr(operation, "operations") and hasattr(operation, "inputs"):
            for inner, outer in zip(operation.inputs, inputs, strict=True):
                names[id(inner)] = outer
            _walk(g, operation, names)
            for inner, outer in zip(operation.outputs, node.output_tensors, strict=True):
                names[id(outer)] = names[id(inner)]
            continue
        layouts = {layout for _, layout in inputs}
        out = _convert_layer(g, operation, [n for n, _ in inputs], layouts.pop())
        names[id(node.output_tensors[0])] = out  # (name, layout)


def to_onnx(model) -> bytes:
    """Serialized ONNX model: input `faces` (n, h, w, c) float32 as the Keras model takes it,
    output `probabilities` (n, classes)."""
    from onnx import TensorProto, helper

    g = _Graph()
    (keras_input,) = model.inputs
    _, height, width, channels = keras_input.shape
    faces_info = helper.make_tensor_value_info(
        "faces", TensorProto.FLOAT, [None, height, width, channels]
    )
    nchw = g.op("Transpose", ["faces"], "to_nchw", perm=[0, 3, 1, 2])
    names: dict[int, tuple[str, str]] = {id(keras_input): (nchw, "NCHW")}
    _walk(g, model, names)
    (keras_output,) = model.outputs
    result, _ = names[id(keras_output)]
    g.nodes.append(helper.make_node("Identity", [result], ["probabilities"]))
    graph = helper.make_graph(
        g.nodes,
        model.name,
        [faces_info],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, None])],
        initializer=g.initializers,
    )
    onnx_model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx_model.ir_version = 8
    return onnx_model.SerializeToString()


def inference_session(model_bytes: bytes, threads: int = 0):
    """An ONNX Runtime CPU session for a serialized graph, set up for the live pipeline."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads  # 0 = one per core
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Idle worker threads sleep instead of spinning: between live frames the cores belong
    # to face detection and video decoding (costs <5% latency per call, measured).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])


class OnnxRunner:
    """An ONNX Runtime session for a Keras model; call it like the model on float32 batches."""

    def __init__(self, keras_model, threads: int = 0) -> None:
        self.session = inference_session(to_onnx(keras_model), threads)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        faces = np.ascontiguousarray(batch, np.float32)
        (probabilities,) = self.session.run(None, {"faces": faces})
        return probabilities
