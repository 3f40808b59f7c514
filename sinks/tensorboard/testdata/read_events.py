"""Reads a TensorBoard events file with an implementation independent of
sslight's: crcmod's CRC-32C and a protobuf wire-format decoder written from
the format's specification (field numbers of tensorboard's event.proto and
summary.proto). Prints the events as JSON lines.

Usage: /usr/bin/python3 read_events.py FILE
"""
import json
import math
import struct
import sys

import crcmod.predefined

crc32c = crcmod.predefined.mkCrcFun("crc-32c")


def masked(data):
    c = crc32c(data)
    return ((((c >> 15) | (c << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def varint(b, i):
    v, shift = 0, 0
    while True:
        x = b[i]
        i += 1
        v |= (x & 0x7F) << shift
        if x < 0x80:
            return v, i
        shift += 7


def fields(b):
    """Yields (field number, wire type, value) of a message's bytes."""
    i = 0
    while i < len(b):
        key, i = varint(b, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = varint(b, i)
        elif wt == 1:
            v, i = b[i:i + 8], i + 8
        elif wt == 2:
            n, i = varint(b, i)
            v, i = b[i:i + n], i + n
        elif wt == 5:
            v, i = b[i:i + 4], i + 4
        else:
            raise ValueError("wire type %d" % wt)
        yield num, wt, v


def value(b):
    out = {}
    for num, wt, v in fields(b):
        if num == 1:
            out["tag"] = v.decode()
        elif num == 2 and wt == 5:
            f = struct.unpack("<f", v)[0]
            # JSON has no infinities: name them.
            out["simple_value"] = f if math.isfinite(f) else repr(f)
        elif num == 4:
            img = {}
            for n2, _, v2 in fields(v):
                if n2 == 1:
                    img["height"] = v2
                elif n2 == 2:
                    img["width"] = v2
                elif n2 == 3:
                    img["colorspace"] = v2
                elif n2 == 4:
                    img["png_bytes"] = len(v2)
                    img["png_signature_ok"] = v2[:8] == b"\x89PNG\r\n\x1a\n"
            out["image"] = img
        elif num == 9:
            for n2, _, v2 in fields(v):
                if n2 == 1:
                    for n3, _, v3 in fields(v2):
                        if n3 == 1:
                            out["plugin"] = v3.decode()
    return out


def event(b):
    out = {}
    for num, wt, v in fields(b):
        if num == 1 and wt == 1:
            out["wall_time"] = struct.unpack("<d", v)[0]
        elif num == 2 and wt == 0:
            out["step"] = v
        elif num == 3:
            out["file_version"] = v.decode()
        elif num == 5:
            out["values"] = [value(v2) for n2, _, v2 in fields(v) if n2 == 1]
    return out


def main(path):
    data = open(path, "rb").read()
    i = 0
    while i < len(data):
        head = data[i:i + 8]
        (n,) = struct.unpack("<Q", head)
        (lcrc,) = struct.unpack("<I", data[i + 8:i + 12])
        if lcrc != masked(head):
            sys.exit("length CRC mismatch at byte %d" % i)
        rec = data[i + 12:i + 12 + n]
        (dcrc,) = struct.unpack("<I", data[i + 12 + n:i + 16 + n])
        if dcrc != masked(rec):
            sys.exit("data CRC mismatch at byte %d" % i)
        print(json.dumps(event(rec), sort_keys=True))
        i += 16 + n


if __name__ == "__main__":
    main(sys.argv[1])
