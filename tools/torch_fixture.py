#!/usr/bin/env python3
"""Writes the PyTorch fixture of `nb_init_from` (tests/test_init_from.c).

A small LeNet-like network with batch normalisation, in PyTorch's naming:

    conv1  Conv2d(1, 4, 5, padding=2)   bn1  BatchNorm2d(4)   ReLU  MaxPool 2
    conv2  Conv2d(4, 8, 5)              ReLU  MaxPool 2       flatten (200)
    fc1    Linear(200, 16)              ReLU
    fc2    Linear(16, 10)

is trained for a few steps on random data (so the running statistics are
not the initial ones), then switched to eval mode and run on 4 fixed
inputs.  Written, in safetensors format (by hand: the Python package is
not needed):

    tests/data/torch_tiny.safetensors     model.state_dict(), F32, with
                                          bn1.num_batches_tracked (I64)
    tests/data/torch_tiny_io.safetensors  x [4, 1, 28, 28] and the eval-mode
                                          logits [4, 10] (F32)

Run from the source tree with Debian's python3-torch:
    /usr/bin/python3 tools/torch_fixture.py
"""
import json
import os
import struct
import sys

import torch
from torch import nn

DTYPES = {torch.float32: "F32", torch.float64: "F64", torch.int64: "I64"}


def save_safetensors(path, tensors, metadata=None):
    """The safetensors layout: u64 header length, JSON header, raw bytes."""
    header, blobs, off = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name, t in tensors.items():
        t = t.detach().contiguous().cpu()
        raw = t.numpy().astype(t.numpy().dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - (8 + len(text)) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 5, padding=2)
        self.bn1 = nn.BatchNorm2d(4)
        self.conv2 = nn.Conv2d(4, 8, 5)
        self.fc1 = nn.Linear(200, 16)
        self.fc2 = nn.Linear(16, 10)

    def forward(self, x):
        h = torch.max_pool2d(torch.relu(self.bn1(self.conv1(x))), 2)
        h = torch.max_pool2d(torch.relu(self.conv2(h)), 2)
        h = torch.relu(self.fc1(torch.flatten(h, 1)))
        return self.fc2(h)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data")
    torch.manual_seed(11)
    m = Tiny()
    opt = torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9)
    for _ in range(5):  # a few steps: running statistics away from 0 and 1
        x = torch.rand(16, 1, 28, 28) * 2 + 0.5
        y = torch.randint(0, 10, (16,))
        opt.zero_grad()
        nn.functional.cross_entropy(m(x), y).backward()
        opt.step()
    m.eval()
    x = torch.rand(4, 1, 28, 28) * 2 + 0.5
    with torch.no_grad():
        logits = m(x)
    meta = {"source": "tools/torch_fixture.py", "torch": torch.__version__}
    save_safetensors(os.path.join(out, "torch_tiny.safetensors"), m.state_dict(), meta)
    save_safetensors(os.path.join(out, "torch_tiny_io.safetensors"),
                     {"x": x, "logits": logits}, meta)
    print("logits:", logits[0, :4].tolist(), "...")


if __name__ == "__main__":
    main()
