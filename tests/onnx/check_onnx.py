"""Validate an ONNX file nabla wrote, with the ONNX project's own tools.

    python3 check_onnx.py MODEL.onnx [--inputs a,b] [--outputs y,z] [--opset 13]
                          [--dynamic] [--elem float|double]

Loads it (the protobuf parsed against onnx.proto), runs the checker with
full_check (shape inference included), checks the opset, the graph's input
and output names and element types, and that a dynamic export's inputs and
outputs start with the symbolic batch "N"; then serialises the loaded model
and loads that again (the round trip must give the same message).  Exit
0 when everything holds, 1 with a message otherwise.
"""
import argparse
import sys

import onnx


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--inputs", default=None)
    ap.add_argument("--outputs", default=None)
    ap.add_argument("--opset", type=int, default=13)
    ap.add_argument("--dynamic", action="store_true")
    ap.add_argument("--elem", choices=["float", "double"], default="float")
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
    data = m.SerializeToString()
    again = onnx.load_from_string(data)
    if again != m:
        sys.exit(f"{a.model}: the serialised model does not load back the same")


if __name__ == "__main__":
    main()
