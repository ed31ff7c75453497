"""Validate an ONNX file nabla wrote, with the ONNX project's own tools.

    python3 check_onnx.py MODEL.onnx [--inputs a,b] [--outputs y,z] [--opset 13]
                          [--dynamic] [--elem float|double] [--weights CKPT]

Loads it (the protobuf parsed against onnx.proto), runs the checker with
full_check (shape inference included), checks the opset, the graph's input
and output names and element types, and that a dynamic export's inputs and
outputs start with the symbolic batch "N"; then serialises the loaded model
and loads that again (the round trip must give the same message).  With
--weights, every float initializer with dimensions must be the tensor of
that name in the safetensors checkpoint CKPT, rounded to the file's type.  Exit
0 when everything holds, 1 with a message otherwise.
"""
import argparse
import json
import struct
import sys

import onnx


def check_weights(model, m, path, elem):
    import numpy as np
    from onnx import numpy_helper

    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    data = raw[8 + n :]
    want = np.float32 if elem == onnx.TensorProto.FLOAT else np.float64
    checked = 0
    for init in m.graph.initializer:
        if init.data_type != elem or len(init.dims) == 0:
            continue
        if init.name not in header:
            sys.exit(f"{model}: initializer {init.name} is not in {path}")
        h = header[init.name]
        b, e = h["data_offsets"]
        src = np.frombuffer(data[b:e], dtype="<f4" if h["dtype"] == "F32" else "<f8")
        src = src.reshape(h["shape"]).astype(want)
        got = numpy_helper.to_array(init)
        if got.shape != src.shape or not np.array_equal(got, src):
            sys.exit(f"{model}: initializer {init.name} differs from {path}")
        checked += 1
    if not checked:
        sys.exit(f"{model}: no initializer to compare with {path}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--inputs", default=None)
    ap.add_argument("--outputs", default=None)
    ap.add_argument("--opset", type=int, default=13)
    ap.add_argument("--dynamic", action="store_true")
    ap.add_argument("--elem", choices=["float", "double"], default="float")
    ap.add_argument("--weights", default=None)
    a = ap.parse_args()

    m = onnx.load(a.model)
    onnx.checker.check_model(m, full_check=True)
    ops = {o.domain: o.version for o in m.opset_import}
    if ops.get("", None) != a.opset:
        sys.exit(f"{a.model}: opset {ops}, expected {a.opset}")
    elem = onnx.TensorProto.FLOAT if a.elem == "float" else onnx.TensorProto.DOUBLE
    g = m.graph
    for vi in list(g.input) + list(g.output):
        if vi.type.tensor_type.elem_type != elem:
            sys.exit(f"{a.model}: {vi.name} has element type {vi.type.tensor_type.elem_type}")
        dims = vi.type.tensor_type.shape.dim
        if a.dynamic and (not dims or dims[0].dim_param != "N"):
            sys.exit(f"{a.model}: {vi.name} has no symbolic batch dimension")
    for init in g.initializer:
        if init.data_type not in (elem, onnx.TensorProto.INT64):
            sys.exit(f"{a.model}: initializer {init.name} has type {init.data_type}")
    for what, want, got in (("inputs", a.inputs, g.input), ("outputs", a.outputs, g.output)):
        names = [v.name for v in got]
        if want is not None and names != want.split(","):
            sys.exit(f"{a.model}: {what} {names}, expected {want.split(',')}")
    if a.weights:
        check_weights(a.model, m, a.weights, elem)
    data = m.SerializeToString()
    again = onnx.load_from_string(data)
    if again != m:
        sys.exit(f"{a.model}: the serialised model does not load back the same")


if __name__ == "__main__":
    main()
