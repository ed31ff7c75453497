#!/usr/bin/env python3
"""Interoperability of nabla checkpoints with the safetensors format, checked
from Python with numpy only (the `safetensors` package is not in Debian):

1. nabla writes a checkpoint (ckpt_interop write); this script parses it by
   hand exactly as the format specifies and checks every value.
2. This script writes a file the way the reference writer does (compact JSON,
   __metadata__ first, tensors sorted by name, header padded with spaces to
   8 bytes); nabla loads it (ckpt_interop check) and checks every value.

Usage: safetensors_interop.py PATH/TO/ckpt_interop
Element i of tensor k holds (i - 5) / 4 + 10 k in both directions.
"""
import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np

TOOL = sys.argv[1]
SHAPES = {"fc1.w": [3, 4], "fc1.b": [4], "conv.w": [2, 1, 3, 3], "fc1.w.m": [3, 4]}
K = {"fc1.w": 0, "fc1.b": 1, "conv.w": 2, "fc1.w.m": 3}
NP = {"F32": "<f4", "F64": "<f8"}
passed = failed = 0


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("FAIL:", what)


def expected(name):
    n = int(np.prod(SHAPES[name]))
    return ((np.arange(n) - 5) / 4.0 + 10 * K[name]).reshape(SHAPES[name])


def read_safetensors(path):
    """Parse a safetensors file by the specification."""
    with open(path, "rb") as fp:
        raw = fp.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    data = raw[8 + n:]
    meta = header.pop("__metadata__", {})
    tensors, spans = {}, []
    for name, info in header.items():
        begin, end = info["data_offsets"]
        spans.append((begin, end))
        arr = np.frombuffer(data[begin:end], dtype=NP[info["dtype"]])
        tensors[name] = (info["dtype"], arr.reshape(info["shape"]))
    return n, meta, tensors, sorted(spans), len(data)


def nabla_writes(dt):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "nabla.safetensors")
        subprocess.run([TOOL, "write", dt, path], check=True)
        n, meta, tensors, spans, dlen = read_safetensors(path)
    st = dt.upper()
    check((8 + n) % 8 == 0, "%s: data not 8-aligned (header length %d)" % (dt, n))
    check(meta.get("format") == "nabla", "%s: format %r" % (dt, meta.get("format")))
    check(meta.get("model") == 'interop "model"', "%s: model %r" % (dt, meta.get("model")))
    check(meta.get("dtype") == st, "%s: dtype %r" % (dt, meta.get("dtype")))
    check(meta.get("step") == "3", "%s: step %r" % (dt, meta.get("step")))
    check(meta.get("optimizer") == "sgd", "%s: optimizer %r" % (dt, meta.get("optimizer")))
    check(float(meta.get("lr", "nan")) == 0.125, "%s: lr %r" % (dt, meta.get("lr")))
    check(meta.get("written_by") == "ckpt_interop", "%s: extra metadata" % dt)
    rng = meta.get("rng", "").split(",")
    check(len(rng) == 4 and all(len(w) == 16 for w in rng), "%s: rng %r" % (dt, rng))
    check("nabla_version" in meta, "%s: nabla_version" % dt)
    check(all(isinstance(v, str) for v in meta.values()), "%s: metadata not strings" % dt)
    check(sorted(tensors) == sorted(SHAPES), "%s: tensors %s" % (dt, sorted(tensors)))
    # the ranges tile the data exactly
    at = 0
    for b, e in spans:
        check(b == at, "%s: range [%d, %d) after %d" % (dt, b, e, at))
        at = e
    check(at == dlen, "%s: %d bytes of data, ranges end at %d" % (dt, dlen, at))
    for name, (dtype, arr) in tensors.items():
        check(dtype == st, "%s: %s dtype %s" % (dt, name, dtype))
        check(list(arr.shape) == SHAPES[name], "%s: %s shape %s" % (dt, name, arr.shape))
        check(np.array_equal(arr, expected(name)), "%s: %s values %s" % (dt, name, arr))


def write_like_reference(path, tensors, metadata):
    """The reference serializer's layout: header with __metadata__ first and
    tensors sorted by name, compact JSON, spaces up to 8-byte alignment."""
    header, data = {"__metadata__": metadata}, b""
    for name in sorted(tensors):
        b = np.ascontiguousarray(tensors[name]).astype(tensors[name].dtype.newbyteorder("<"))
        header[name] = {"dtype": {"f": "F", "i": "I"}[b.dtype.kind] + str(8 * b.itemsize),
                        "shape": list(b.shape),
                        "data_offsets": [len(data), len(data) + b.nbytes]}
        data += b.tobytes()
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as fp:
        fp.write(struct.pack("<Q", len(h)) + h + data)


def python_writes(dt):
    npdt = np.float32 if dt == "f32" else np.float64
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "python.safetensors")
        write_like_reference(path, {k: expected(k).astype(npdt) for k in SHAPES},
                             {"format": "pt", "model": "from python", "step": "7"})
        r = subprocess.run([TOOL, "check", dt, path], capture_output=True, text=True)
        check(r.returncode == 0, "%s: nabla could not load Python's file: %s" % (dt, r.stderr))
        # and a wrong shape is refused with a message naming the tensor
        bad = {k: expected(k).astype(npdt) for k in SHAPES}
        bad["fc1.b"] = np.zeros(5, npdt)
        write_like_reference(path, bad, {"model": "from python"})
        r = subprocess.run([TOOL, "check", dt, path], capture_output=True, text=True)
        check(r.returncode == 1 and "fc1.b: checkpoint has [5], model has [4]" in r.stderr,
              "%s: wrong shape accepted or unclear: %s" % (dt, r.stderr))


for dt in ("f32", "f64"):
    nabla_writes(dt)
    python_writes(dt)
print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
