#!/usr/bin/env python3
"""A nabla checkpoint rewritten as PyTorch would name it (standard library
only), for the command-line tests of --init-from:

    torch_names.py IN OUT [--module] [--f64]

Keeps the parameters and running statistics under PyTorch's names (P.w ->
P.weight, P.b -> P.bias, a batchnorm's P.gamma -> P.weight and P.beta ->
P.bias, P.running_mean and P.running_var as they are), adds an I64
P.num_batches_tracked beside each batchnorm, drops the optimizer state and
the metadata, and writes the tensors in another order than the input's.
--module puts "module." in front of every name (nn.DataParallel's
state_dict).  The data bytes are copied unchanged.
"""
import json
import struct
import sys


def main():
    src, dst = sys.argv[1], sys.argv[2]
    module = "--module" in sys.argv[3:]
    with open(src, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    header.pop("__metadata__", None)
    rename = {".w": ".weight", ".b": ".bias", ".gamma": ".weight", ".beta": ".bias",
              ".running_mean": ".running_mean", ".running_var": ".running_var"}
    out = []
    for name, t in header.items():
        stem, dot, last = name.rpartition(".")
        new = rename.get(dot + last)
        if not dot or new is None:
            continue  # optimizer state (P.w.m, P.w.v, ...)
        b, e = t["data_offsets"]
        out.append((stem + new, t["dtype"], t["shape"], data[b:e]))
        if last == "running_mean":
            out.append((stem + ".num_batches_tracked", "I64", [], struct.pack("<q", 7)))
    out.reverse()
    if module:
        out = [("module." + n, d, s, b) for n, d, s, b in out]
    hdr, blob, off = {}, b"", 0
    for name, dtype, shape, raw in out:
        hdr[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(raw)]}
        blob += raw
        off += len(raw)
    text = json.dumps(hdr).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(dst, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + blob)


if __name__ == "__main__":
    main()
