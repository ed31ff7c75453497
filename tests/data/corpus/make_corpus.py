#!/usr/bin/env python3
"""Writes the handcrafted part of the parser regression corpus.

idx/ files use the fuzz_idx framing (fuzz/idx_frame.h): a 4-byte big-endian
length of the images file, the images file, then the labels file.  cifar/
files are CIFAR-10 binary files as they are; idx_file/ and cifar_file/
add a mode byte in front (see below).

Names say what the test expects (tests/test_data.c, test_corpus_*):
ok_*  must parse, bad_* must fail with NB_ERR_FORMAT (IDX: with 10 classes,
the MNIST format); any other name must only end cleanly, in success or an
error: fuzz-<sha1> are inputs the fuzzer found that reach new code (kept with
`fuzz_idx -merge=1`), and a crasher would be added as crash-<sha1>.  This
script writes only the ok_/bad_ files.
Run from anywhere: python3 tests/data/corpus/make_corpus.py
"""
import gzip
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def be(*xs):
    return b"".join(struct.pack(">I", x) for x in xs)


def images(n, h, w, magic=0x803, extra=b"", cut=0):
    body = bytes((i * 37 + 11) % 256 for i in range(n * h * w))
    data = be(magic, n, h, w) + body + extra
    return data[:len(data) - cut] if cut else data


def labels(n, magic=0x801, extra=b"", cut=0, values=None):
    vals = bytes(values if values is not None else [i % 10 for i in range(n)])
    data = be(magic, n) + vals + extra
    return data[:len(data) - cut] if cut else data


def frame(img, lab):
    return struct.pack(">I", len(img)) + img + lab


IDX = {
    "ok_tiny": frame(images(3, 2, 2), labels(3)),
    "ok_one_pixel": frame(images(1, 1, 1), labels(1, values=[9])),
    "ok_28x28": frame(images(2, 28, 28), labels(2, values=[0, 9])),
    "bad_empty": b"",
    "bad_frame_only": struct.pack(">I", 0),
    "bad_three_bytes": b"\x00\x00\x08",
    "bad_images_magic": frame(images(3, 2, 2, magic=0x12345678), labels(3)),
    "bad_images_gzip": frame(b"\x1f\x8b\x08\x00" + images(3, 2, 2)[4:], labels(3)),
    "bad_images_type_int": frame(images(3, 2, 2, magic=0xC03), labels(3)),
    "bad_images_ndim_2": frame(be(0x802, 3, 4) + bytes(12), labels(3)),
    "bad_labels_magic_images": frame(images(3, 2, 2), images(3, 2, 2)),
    "bad_labels_magic": frame(images(3, 2, 2), labels(3, magic=0x803)),
    "bad_images_header_cut": frame(be(0x803, 3, 2), labels(3)),
    "bad_labels_header_cut": frame(images(3, 2, 2), be(0x801)[:3]),
    "bad_images_truncated": frame(images(3, 2, 2, cut=1), labels(3)),
    "bad_images_trailing": frame(images(3, 2, 2, extra=b"\0"), labels(3)),
    "bad_labels_truncated": frame(images(3, 2, 2), labels(3, cut=1)),
    "bad_labels_trailing": frame(images(3, 2, 2), labels(3, extra=b"xy")),
    "bad_count_mismatch": frame(images(3, 2, 2), labels(4)),
    "bad_label_10": frame(images(3, 2, 2), labels(3, values=[0, 10, 1])),
    "bad_label_255": frame(images(3, 2, 2), labels(3, values=[0, 1, 255])),
    "bad_zero_images": frame(be(0x803, 0, 28, 28), labels(0)),
    "bad_zero_rows": frame(be(0x803, 3, 0, 28), labels(3)),
    "bad_dims_overflow": frame(be(0x803, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF), labels(3)),
    "bad_dims_2_32": frame(be(0x803, 0x10000, 0x10000, 1) + bytes(64), labels(3)),
    "bad_dims_over_limit": frame(be(0x803, 0x80000000, 1, 1) + bytes(8), labels(3)),
    "bad_labels_count_huge": frame(images(3, 2, 2), be(0x801, 0xFFFFFFFF) + bytes(3)),
    "bad_frame_longer": struct.pack(">I", 1000) + images(3, 2, 2) + labels(3),
}

REC = 3073


def record(label, seed=0):
    return bytes([label]) + bytes((i * 7 + seed) % 256 for i in range(3072))


CIFAR = {
    "ok_one": record(3),
    "ok_two": record(0) + record(9, 5),
    "bad_empty": b"",
    "bad_one_byte": b"\x01",
    "bad_pixels_only": bytes(3072),
    "bad_one_extra": record(1) + b"\x00",
    "bad_one_short": (record(1) + record(2))[:-1],
    "bad_label_10": record(10),
    "bad_label_255_second": record(1) + record(255),
}



def gz(data):
    return gzip.compress(data, compresslevel=9, mtime=0)


# idx_file/ and cifar_file/: the inputs of fuzz_idx_file and fuzz_cifar_file
# (fuzz/fuzz_file.h): a mode byte whose bit k has the target gzip file k,
# then the files.  Raw files may hold gzip data of their own (mode 0), to
# reach trailing bytes, cut members and concatenated members.
TINY = images(3, 2, 2)
IDX_FILE = {
    "ok_tiny_raw": b"\x00" + IDX["ok_tiny"],
    "ok_tiny_gz": b"\x03" + IDX["ok_tiny"],
    "ok_28x28_gz_images": b"\x05" + IDX["ok_28x28"],
    "ok_one_pixel_gz_labels": b"\x06" + IDX["ok_one_pixel"],
    "ok_gz_two_members": b"\x04" + frame(gz(TINY[:10]) + gz(TINY[10:]), labels(3)),
    "bad_gz_trailing": b"\x04" + frame(gz(TINY) + b"junk", labels(3)),
    "bad_gz_trailing_zero": b"\x04" + frame(gz(TINY) + b"\0", labels(3)),
    "bad_gz_cut": b"\x04" + frame(gz(TINY)[:-5], labels(3)),
    "bad_gz_dims_over_limit": b"\x05" + IDX["bad_dims_over_limit"],
    "bad_gz_images_trailing": b"\x05" + IDX["bad_images_trailing"],
    "bad_gz_images_truncated": b"\x07" + IDX["bad_images_truncated"],
    "bad_gz_labels_trailing": b"\x06" + IDX["bad_labels_trailing"],
}
CIFAR_FILE = {
    "ok_one_raw": b"\x00" + CIFAR["ok_one"],
    "ok_two_gz": b"\x01" + CIFAR["ok_two"],
    "ok_gz_two_members": b"\x00" + gz(record(3)) + gz(record(4)),
    "bad_gz_one_extra": b"\x01" + CIFAR["bad_one_extra"],
    "bad_gz_one_short": b"\x01" + CIFAR["bad_one_short"],
    "bad_gz_label_10": b"\x01" + CIFAR["bad_label_10"],
    "bad_gz_trailing": b"\x00" + gz(record(3)) + b"x",
    "bad_gz_cut": b"\x00" + gz(record(3))[:-1],
    "bad_gz_empty": b"\x01",
}

for sub, files in (("idx", IDX), ("cifar", CIFAR), ("idx_file", IDX_FILE),
                   ("cifar_file", CIFAR_FILE)):
    os.makedirs(os.path.join(HERE, sub), exist_ok=True)
    for name, data in files.items():
        with open(os.path.join(HERE, sub, name), "wb") as f:
            f.write(data)
