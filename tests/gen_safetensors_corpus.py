#!/usr/bin/env python3
"""Write the seed files of tests/data/corpus/safetensors/ (the regression
corpus of the safetensors parser and the seed corpus of its fuzz target).

ok_*  must be accepted, bad_* must be refused with NB_ERR_FORMAT; the Check
test test_checkpoint:test_corpus runs every file through the parser.  Files
found by the fuzzer are added beside them under other names.
Usage: python3 tests/gen_safetensors_corpus.py [DIR]
"""
import json
import os
import struct
import sys

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "data", "corpus", "safetensors")
os.makedirs(out, exist_ok=True)


def image(header, data=b"", pad=True, hlen=None):
    """8-byte LE length, header (str or bytes), data; padded like the
    reference writer (spaces up to 8-byte alignment) unless pad=False."""
    h = header.encode() if isinstance(header, str) else header
    if pad:
        h += b" " * ((8 - (8 + len(h)) % 8) % 8)
    n = len(h) if hlen is None else hlen
    return struct.pack("<Q", n) + h + data


def st(tensors, meta=None, **kw):
    """A file as the reference writer makes it: tensors {name: (dtype,
    shape, bytes)} laid out in the given order."""
    hdr, data = {}, b""
    if meta is not None:
        hdr["__metadata__"] = meta
    for name, (dt, shape, b) in tensors.items():
        hdr[name] = {"dtype": dt, "shape": shape,
                     "data_offsets": [len(data), len(data) + len(b)]}
        data += b
    return image(json.dumps(hdr, separators=(",", ":")), data, **kw)


f32 = lambda *v: struct.pack("<%df" % len(v), *v)
f64 = lambda *v: struct.pack("<%dd" % len(v), *v)

NABLA_META = {"format": "nabla", "nabla_version": "0.1.0", "model": "fuzz", "dtype": "F32",
              "rng": "bb0cf61b2f181cdb,97c7a1364df06524,33befae49bc025da,4e6241f252d0a033",
              "optimizer": "sgd", "step": "3", "lr": "0.125"}

files = {
    # accepted
    "ok_empty.safetensors": image("{}"),
    "ok_metadata_only.safetensors": st({}, {"format": "pt", "k": "v"}),
    "ok_small_model.safetensors": st({
        "fc1.w": ("F32", [3, 4], f32(*range(12))),
        "fc1.b": ("F32", [4], f32(1, 2, 3, 4)),
        "fc1.w.m": ("F32", [3, 4], f32(*[0.5] * 12))}, {"format": "nabla"}),
    "ok_mixed_dtypes.safetensors": st({
        "a": ("F64", [2], f64(1.5, -2)), "b": ("BF16", [3], b"\0" * 6),
        "c": ("I64", [], b"\1" + b"\0" * 7), "d": ("BOOL", [0, 5], b""),
        "e": ("U8", [1, 1, 1], b"\xff")}),
    "ok_unicode_names.safetensors": st({"h\u00e9\u00e9\U0001F600": ("U8", [1], b"x")}),
    "ok_escaped_names.safetensors": image(
        '{"q\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00":'
        '{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', b"z"),
    "ok_whitespace.safetensors": image(
        '{ "a" : { "dtype" : "F32" , "shape" : [ 1 ] ,\n\t"data_offsets" : [ 0 , 4 ] } }\r\n',
        f32(1)),
    "ok_reversed_order.safetensors": image(
        '{"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},'
        '"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', f32(1, 2)),
    # checkpoints as nabla writes them, for the 3-tensor model of the tests
    # and the fuzz target (fc1.w [3,4], fc1.b [4], state fc1.w.m [3,4])
    "ok_nabla_f32.safetensors": st({
        "fc1.w": ("F32", [3, 4], f32(*range(12))),
        "fc1.b": ("F32", [4], f32(1, 2, 3, 4)),
        "fc1.w.m": ("F32", [3, 4], f32(*[0.5] * 12))}, NABLA_META),
    "ok_nabla_f64.safetensors": st({
        "fc1.w": ("F64", [3, 4], f64(*range(12))),
        "fc1.b": ("F64", [4], f64(1, 2, 3, 4)),
        "fc1.w.m": ("F64", [3, 4], f64(*[0.5] * 12))}, dict(NABLA_META, dtype="F64")),
    # parses, but its metadata cannot be restored
    "ok_nabla_bad_rng.safetensors": st({
        "fc1.w": ("F32", [3, 4], f32(*range(12))),
        "fc1.b": ("F32", [4], f32(1, 2, 3, 4)),
        "fc1.w.m": ("F32", [3, 4], f32(*[0.5] * 12))},
        dict(NABLA_META, rng="0000000000000000,0000000000000000,0000000000000000,"
             "0000000000000000", step="-3", lr="nan")),
    # refused
    "bad_empty_file.safetensors": b"",
    "bad_short.safetensors": b"\x02\0\0\0",
    "bad_absurd_length.safetensors": struct.pack("<Q", 1 << 40) + b"{}",
    "bad_length_past_end.safetensors": image("{}", hlen=64),
    "bad_length_zero.safetensors": image("", pad=False),
    "bad_not_object.safetensors": image("[]"),
    "bad_leading_space.safetensors": image(" {}"),
    "bad_truncated_json.safetensors": image('{"a":{"dtype":"F32"', pad=False),
    "bad_trailing_comma.safetensors": image('{"__metadata__":{},}'),
    "bad_single_quotes.safetensors": image("{'a':1}"),
    "bad_invalid_utf8.safetensors": image(b'{"\xff":{}}'),
    "bad_lone_surrogate.safetensors": image('{"\\udc00":{}}'),
    "bad_nul_escape.safetensors": image('{"\\u0000":{}}'),
    "bad_raw_newline.safetensors": image('{"a\nb":{}}'),
    "bad_leading_zero.safetensors": image(
        '{"a":{"dtype":"F32","shape":[01],"data_offsets":[0,4]}}', f32(1)),
    "bad_float_dim.safetensors": image(
        '{"a":{"dtype":"F32","shape":[1.0],"data_offsets":[0,4]}}', f32(1)),
    "bad_negative_offset.safetensors": image(
        '{"a":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}}', f32(1)),
    "bad_huge_dim.safetensors": image(
        '{"a":{"dtype":"F32","shape":[18446744073709551616],"data_offsets":[0,4]}}', f32(1)),
    "bad_overflow_shape.safetensors": image(
        '{"a":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,8]}}', f64(1)),
    "bad_unknown_dtype.safetensors": image(
        '{"a":{"dtype":"F31","shape":[1],"data_offsets":[0,4]}}', f32(1)),
    "bad_unknown_field.safetensors": image(
        '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":[]}}', f32(1)),
    "bad_missing_field.safetensors": image('{"a":{"dtype":"F32","shape":[1]}}', f32(1)),
    "bad_duplicate_tensor.safetensors": image(
        '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},'
        '"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', f32(1, 2)),
    "bad_duplicate_meta_key.safetensors": image('{"__metadata__":{"k":"a","k":"b"}}'),
    "bad_meta_not_string.safetensors": image('{"__metadata__":{"step":3}}'),
    "bad_wrong_size.safetensors": image(
        '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}', f32(1)),
    "bad_offsets_past_end.safetensors": image(
        '{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', f32(1)),
    "bad_offsets_reversed.safetensors": image(
        '{"a":{"dtype":"F32","shape":[0],"data_offsets":[4,0]}}', f32(1)),
    "bad_overlap.safetensors": image(
        '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},'
        '"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', f32(1, 2)),
    "bad_gap.safetensors": image(
        '{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', f32(1, 2)),
    "bad_trailing_bytes.safetensors": st({"a": ("F32", [1], f32(1))}) + b"\0\0\0\0",
    "bad_truncated_data.safetensors": st({"a": ("F32", [4], f32(1, 2, 3, 4))})[:-3],
    "bad_deep_nesting.safetensors": image("{\"a\":" + "[" * 5000 + "]" * 5000 + "}"),
}
for name, data in files.items():
    with open(os.path.join(out, name), "wb") as fp:
        fp.write(data)
print("wrote %d files to %s" % (len(files), out))
