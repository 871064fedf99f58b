#!/usr/bin/env python3
"""make_seeds.py: writes the fuzzers' seed corpora (tests/fuzz/corpus/<target>/, small valid files
that every reader must accept) and the hand-made tricky inputs of tests/inputs/fuzz/<target>/
(hand-*: inputs each reader must refuse with a gv::Error, without crashing or allocating much).
Run by hand when they need to change (python3 tests/fuzz/make_seeds.py); the files are committed,
and CI never runs this. Crashers found by the fuzzers go into tests/inputs/fuzz/<target>/ (the corpus of bad inputs), under
the names libFuzzer gave them. The JPEG seeds are made with TurboJPEG through ctypes."""
import ctypes
import ctypes.util
import gzip
import json
import struct
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent


def write(kind, target, name, data):
    # regressions live in the corpus of bad inputs, tests/inputs/fuzz/<target>/
    path = (HERE.parent / "inputs" / "fuzz" if kind == "regressions" else HERE / kind) / target / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


# ---- IDX ------------------------------------------------------------------------------------------
def idx(dims, body=None, type_code=0x08):
    n = 1
    for d in dims:
        n *= d
    if body is None:
        body = bytes((7 * i + 3) % 256 for i in range(n))
    return bytes([0, 0, type_code, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + body


def gz(data):
    return gzip.compress(data, compresslevel=9, mtime=0)


# ---- PNG ------------------------------------------------------------------------------------------
def chunk(kind, payload):
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png(width, height, depth, color, rows, extra=b"", interlace=0):
    """rows: the raw scanlines, each already prefixed with its filter byte."""
    ihdr = struct.pack(">IIBBBBB", width, height, depth, color, 0, 0, interlace)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + extra +
            chunk(b"IDAT", zlib.compress(b"".join(rows), 9)) + chunk(b"IEND", b""))


def png_seeds():
    out = {}
    # 3x2 8-bit gray, filters none and sub
    out["gray8.png"] = png(3, 2, 8, 0, [b"\x00\x00\x80\xff", b"\x01\x10\x10\x10"])
    # 4x2 RGBA 8-bit, filters none and up
    out["rgba8.png"] = png(4, 2, 8, 6, [b"\x00" + bytes(range(16)), b"\x02" + bytes(range(16, 32))])
    # 5x1 2-bit gray (expanded to 8 bits)
    out["gray2.png"] = png(5, 1, 2, 0, [b"\x00\x1b\x40"])
    # 2x2 palette with transparency (RGBA after expansion)
    plte = chunk(b"PLTE", bytes([255, 0, 0, 0, 255, 0, 0, 0, 255]))
    trns = chunk(b"tRNS", bytes([255, 128]))
    out["palette_trns.png"] = png(2, 2, 4, 3, [b"\x00\x01", b"\x00\x20"], extra=plte + trns)
    # 2x2 16-bit gray+alpha (scaled to 8 bits)
    out["graya16.png"] = png(2, 2, 16, 4, [b"\x00" + bytes(range(8)), b"\x00" + bytes(range(8, 16))])
    # 3x3 RGB, Adam7 interlaced. The passes' sub-images for 3x3: pass 1 1x1, passes 2 and 3 empty,
    # pass 4 1x1, pass 5 2x1, pass 6 1x2, pass 7 3x1; each scanline has its filter byte.
    rows = [b"\x00" + bytes([200, 10, 10]),                    # pass 1: (0,0)
            b"\x00" + bytes([10, 200, 10]),                    # pass 4: (2,0)
            b"\x00" + bytes([10, 10, 200, 50, 50, 50]),        # pass 5: (0,2),(2,2)
            b"\x00" + bytes([1, 2, 3]), b"\x00" + bytes([4, 5, 6]),  # pass 6: (1,0),(1,2)
            b"\x00" + bytes(range(9))]                         # pass 7: row 1
    out["rgb8_interlaced.png"] = png(3, 3, 8, 2, rows, interlace=1)
    return out


# ---- JPEG (TurboJPEG through ctypes) ----------------------------------------------------------------
def jpeg(width, height, pixels, pixel_format, subsamp, quality=75, flags=0):
    lib = ctypes.CDLL(ctypes.util.find_library("turbojpeg") or "libturbojpeg.so.0")
    lib.tjInitCompress.restype = ctypes.c_void_p
    handle = ctypes.c_void_p(lib.tjInitCompress())
    buf = ctypes.POINTER(ctypes.c_ubyte)()
    size = ctypes.c_ulong(0)
    src = (ctypes.c_ubyte * len(pixels)).from_buffer_copy(pixels)
    rc = lib.tjCompress2(handle, src, width, 0, height, pixel_format, ctypes.byref(buf), ctypes.byref(size),
                         subsamp, quality, flags)
    assert rc == 0, "tjCompress2 failed"
    data = ctypes.string_at(buf, size.value)
    lib.tjFree(buf)
    lib.tjDestroy(handle)
    return data


def jpeg_seeds():
    TJPF_RGB, TJPF_GRAY = 0, 6
    TJSAMP_444, TJSAMP_420, TJSAMP_GRAY = 0, 2, 3
    TJFLAG_PROGRESSIVE = 16384
    rgb = bytes((x * 40 + y * 17 + c * 90) % 256 for y in range(8) for x in range(8) for c in range(3))
    gray = bytes((x * 30 + y * 5) % 256 for y in range(8) for x in range(8))
    return {
        "rgb444.jpg": jpeg(8, 8, rgb, TJPF_RGB, TJSAMP_444, 50),
        "rgb420_progressive.jpg": jpeg(8, 8, rgb, TJPF_RGB, TJSAMP_420, 40, TJFLAG_PROGRESSIVE),
        "gray.jpg": jpeg(8, 8, gray, TJPF_GRAY, TJSAMP_GRAY, 50),
    }


# ---- safetensors ------------------------------------------------------------------------------------
def safetensors(tensors, metadata=None, pad=True, raw_header=None):
    """tensors: [(name, dtype, shape, data bytes)], laid out in order of name."""
    header, body = {}, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, data in sorted(tensors):
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(body), len(body) + len(data)]}
        body += data
    text = raw_header if raw_header is not None else json.dumps(header, separators=(",", ":")).encode()
    if pad:
        text += b" " * (-(8 + len(text)) % 8)
    return struct.pack("<Q", len(text)) + text + body


def safetensors_seeds():
    return {
        "mixed.safetensors": safetensors(
            [("w", "F32", [2, 3], struct.pack("<6f", 1, -2, 0.5, 3, 4, -0.25)),
             ("b", "F64", [2], struct.pack("<2d", 0.1, -7)),
             ("step", "I64", [], struct.pack("<q", 42))],
            metadata={"format": "genvae-checkpoint", "format_version": "1"}),
        "empty.safetensors": safetensors([]),
        "zero_size.safetensors": safetensors([("e", "F32", [0, 4], b""), ("x", "I64", [1], struct.pack("<q", -1))]),
    }


# ---- hand-made regressions: inputs each reader must refuse ------------------------------------------
def idx_regressions():
    images = idx([2, 3, 3])
    return {
        "hand-truncated.idx.gz": gz(images)[:-9],                    # the gzip stream cut in its trailer
        "hand-truncated-body.idx.gz": gz(images[:-4]),               # a whole stream of a truncated file
        "hand-bad-crc.idx.gz": gz(images)[:-8] + b"\0\0\0\0" + gz(images)[-4:],
        "hand-absurd-dims.idx": idx([0xFFFFFFFF, 0xFFFFFFFF, 2], body=b""),
        "hand-255-dims.idx": bytes([0, 0, 8, 255]) + b"\0\0\0\1" * 255,  # 255 dims of 1, no data byte
        "hand-trailing.idx": idx([3]) + b"\0",
        "hand-int32-type.idx": idx([1], body=b"\0\0\0\1", type_code=0x0C),
    }


def image_regressions():
    ihdr_huge = struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0)
    ihdr_big = struct.pack(">IIBBBBB", 16384, 16384, 16, 6, 0, 0, 0)  # 2^28 pixels, 16-bit RGBA
    sig = b"\x89PNG\r\n\x1a\n"
    jpg = jpeg_seeds()["rgb444.jpg"]
    sof = jpg.index(b"\xff\xc0")
    huge_jpeg = bytearray(jpg)
    huge_jpeg[sof + 5:sof + 9] = struct.pack(">HH", 65500, 65500)  # height, width
    return {
        "hand-huge-declared.png": sig + chunk(b"IHDR", ihdr_huge) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) +
                                  chunk(b"IEND", b""),
        "hand-max-pixels-truncated.png": sig + chunk(b"IHDR", ihdr_big) + chunk(b"IDAT", zlib.compress(b"\0" * 64)),
        "hand-truncated.png": png_seeds()["rgba8.png"][:-20],
        "hand-huge-declared.jpg": bytes(huge_jpeg),
        "hand-truncated.jpg": jpg[: len(jpg) // 2],
        "hand-signature-only.png": sig,
    }


def safetensors_regressions():
    def raw(header, body=b""):
        return struct.pack("<Q", len(header)) + header + body
    return {
        "hand-header-length-overflow.safetensors": struct.pack("<Q", 0xFFFFFFFFFFFFFFFF) + b"{}",
        "hand-header-length-past-end.safetensors": struct.pack("<Q", 64) + b"{}",
        "hand-shape-overflow.safetensors": raw(b'{"a":{"dtype":"F64","shape":[4294967296,4294967296],'
                                               b'"data_offsets":[0,0]}}'),
        # zero elements, but the other dims multiply past int64 (the strides of such a tensor overflow)
        "hand-zero-dim-huge-strides.safetensors": raw(b'{"a":{"dtype":"F32","shape":[0,4294967296,4294967296],'
                                                      b'"data_offsets":[0,0]}}'),
        "hand-offsets-past-end.safetensors": raw(b'{"a":{"dtype":"I64","shape":[1],"data_offsets":[0,18446744073709551615]}}',
                                                 b"\0" * 8),
        "hand-deep-json.safetensors": raw(b"[" * 1000 + b"]" * 1000),
        "hand-duplicate-key.safetensors": raw(b'{"a":{"dtype":"I64","shape":[],"data_offsets":[0,8]},'
                                              b'"a":{"dtype":"I64","shape":[],"data_offsets":[0,8]}}', b"\0" * 8),
    }


def main():
    for name, data in {"images-3x2x2.idx": idx([3, 2, 2]), "labels-5.idx": idx([5]),
                       "images-2x3x3.idx.gz": gz(idx([2, 3, 3])), "empty-1x0.idx": idx([1, 0])}.items():
        write("corpus", "idx", name, data)
    for name, data in {**png_seeds(), **jpeg_seeds()}.items():
        write("corpus", "image", name, data)
    for name, data in safetensors_seeds().items():
        write("corpus", "safetensors", name, data)
    for target, files in (("idx", idx_regressions()), ("image", image_regressions()),
                          ("safetensors", safetensors_regressions())):
        for name, data in files.items():
            write("regressions", target, name, data)


if __name__ == "__main__":
    main()
