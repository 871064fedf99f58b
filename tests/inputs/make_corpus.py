#!/usr/bin/env python3
"""make_corpus.py: builds the corpus of bad inputs in tests/inputs (see MANIFEST.tsv and README.md).

  make_corpus.py static DIR          writes the files kept in the repository (data sets, archives,
                                     configs) under DIR; the same bytes every time
  make_corpus.py check               rebuilds them in a scratch folder and fails unless they equal
                                     the committed ones (so the corpus is what this script makes)
  make_corpus.py checkpoints RUN DIR derives the bad checkpoints (ckpt/<case>/, each a run folder)
                                     from RUN, a good tiny genvae-train run: a checkpoint must fit the
                                     model code of the build under test, so these are made at test time

Only the standard library is used. The fuzzers' regressions (fuzz/<target>/) are written by
tests/fuzz/make_seeds.py and by hand, not here.
"""
import filecmp
import gzip
import io
import json
import math
import random
import shutil
import struct
import sys
import tarfile
import tempfile
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
STATIC = ["good", "data", "config"]  # the folders this script owns


# ---- IDX and PNG writers -------------------------------------------------------------------------
def idx(dims, body):
    return bytes([0, 0, 8, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + bytes(body)


def gz(data):
    return gzip.compress(data, mtime=0)  # no timestamp: the same bytes every time


def digits(n, side, seed):
    """n blurry blobs of side x side pixels, one per class in turn: bytes (n*side*side) and labels."""
    rng = random.Random(seed)
    pixels, labels = bytearray(), []
    for i in range(n):
        cx, cy, r = rng.uniform(0.3, 0.7) * side, rng.uniform(0.3, 0.7) * side, rng.uniform(0.15, 0.3) * side
        for y in range(side):
            for x in range(side):
                d = math.hypot(x - cx, y - cy)
                pixels.append(max(0, min(255, int(255 * math.exp(-(d / r) ** 2)))))
        labels.append(i % 10)
    return pixels, labels


def mnist_files(n_train=20, n_test=10, train_side=28, test_side=28):
    tr, trl = digits(n_train, train_side, 1)
    te, tel = digits(n_test, test_side, 2)
    return {
        "train-images-idx3-ubyte.gz": gz(idx([n_train, train_side, train_side], tr)),
        "train-labels-idx1-ubyte.gz": gz(idx([n_train], trl)),
        "t10k-images-idx3-ubyte.gz": gz(idx([n_test, test_side, test_side], te)),
        "t10k-labels-idx1-ubyte.gz": gz(idx([n_test], tel)),
    }


def png(width, height, rgb_rows):
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    raw = b"".join(b"\x00" + bytes(row) for row in rgb_rows)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def folder_files():
    files = {}
    for split, n in (("train", 6), ("test", 2)):
        for i in range(n):
            rows = [[(17 * (x + y + i)) % 256 for x in range(8) for _ in range(3)] for y in range(8)]
            files[f"{split}/a/{i:02d}.png"] = png(8, 8, rows)
    return files


def tar_gz(members):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            t.addfile(info, io.BytesIO(data))
    return gz(buf.getvalue())


# ---- the static corpus ---------------------------------------------------------------------------
def static_files():
    f = {}
    for name, data in mnist_files().items():
        f[f"good/mnist/{name}"] = data
    for name, data in folder_files().items():
        f[f"good/folder/{name}"] = data

    def mnist_case(case, **changes):
        files = mnist_files(**{k: v for k, v in changes.items() if k in ("train_side", "test_side")})
        for name, data in changes.get("replace", {}).items():
            files[name] = data
        for name, data in files.items():
            f[f"data/{case}/{name}"] = data

    _, tel = digits(10, 28, 2)
    bad = list(tel)
    bad[3] = 10
    mnist_case("mnist-test-label-10", replace={"t10k-labels-idx1-ubyte.gz": gz(idx([10], bad))})
    _, trl = digits(20, 28, 1)
    bad = list(trl)
    bad[0] = 255
    mnist_case("mnist-train-label-255", replace={"train-labels-idx1-ubyte.gz": gz(idx([20], bad))})
    mnist_case("mnist-split-shapes", test_side=14)
    mnist_case("mnist-14x14", train_side=14, test_side=14)
    mnist_case("mnist-count-mismatch", replace={"t10k-labels-idx1-ubyte.gz": gz(idx([9], tel[:9]))})
    # every member would be a train/<class>/ image by its last parts; none may be taken
    f["data/cifar-unsafe-members.tar.gz"] = tar_gz([
        ("../train/cat/0000.jpg", b"never decoded"),
        ("/train/cat/0001.jpg", b"never decoded"),
        ("cifar/../../train/dog/0002.jpg", b"never decoded"),
    ])
    f["config/unknown-key.json"] = json.dumps({"latent": 2, "latnet": 8}).encode()
    f["config/wrong-type.json"] = json.dumps({"latent": "20"}).encode()
    f["config/seed-negative.json"] = json.dumps({"seed": -1}).encode()
    f["config/not-json.json"] = b'{"latent": 2,'
    f["config/not-object.json"] = b'["latent", 2]'
    return f


def write_static(root):
    root = Path(root)
    for name, data in static_files().items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)


def check():
    with tempfile.TemporaryDirectory() as t:
        write_static(t)
        made = {str(p.relative_to(t)) for p in Path(t).rglob("*") if p.is_file()}
        kept = {str(p.relative_to(HERE)) for d in STATIC for p in (HERE / d).rglob("*") if p.is_file()}
        problems = sorted(made ^ kept) + sorted(n for n in made & kept if not filecmp.cmp(Path(t) / n, HERE / n, False))
        if problems:
            print("FAIL: the committed corpus differs from what make_corpus.py builds:", problems[:10])
            print("      run: python3 tests/inputs/make_corpus.py static tests/inputs")
            sys.exit(1)
        print(f"ok: {len(made)} committed corpus files are what make_corpus.py builds")


# ---- checkpoints derived from a good run ---------------------------------------------------------
def read_st(path):
    raw = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8:8 + n]), bytearray(raw[8 + n:])


def write_st(path, header, data):
    text = json.dumps(header).encode()
    text += b" " * (-(8 + len(text)) % 8)
    Path(path).write_bytes(struct.pack("<Q", len(text)) + text + bytes(data))


def set_f32(header, data, name, index, value):
    begin = header[name]["data_offsets"][0] + 4 * index
    data[begin:begin + 4] = struct.pack("<f", value)


def checkpoints(run, out):
    run, out = Path(run), Path(out)
    header, data = read_st(run / "checkpoint.safetensors")
    names = sorted(k for k in header if k != "__metadata__")
    weight = next(k for k in names if k.startswith("model.") and k.endswith(".weight"))
    moment = next(k for k in names if k.startswith("optim.") and header[k]["dtype"] == "F32")
    enc_bias = [k for k in names if k.startswith("model.encoder.") and k.endswith(".bias")][-1]

    def case(name, edit_header=None, edit_data=None, edit_config=None):
        d = out / "ckpt" / name
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)
        h, b = json.loads(json.dumps(header)), bytearray(data)
        if edit_data:
            edit_data(h, b)
        if edit_header:
            edit_header(h)
        write_st(d / "checkpoint.safetensors", h, b)
        config = json.loads((run / "config.json").read_text())
        if edit_config:
            edit_config(config)
        (d / "config.json").write_text(json.dumps(config, indent=2))

    case("nan-weight", edit_data=lambda h, b: set_f32(h, b, weight, 5, float("nan")))
    case("inf-optim-state", edit_data=lambda h, b: set_f32(h, b, moment, 0, float("inf")))

    def huge_logvar(h, b):  # the encoder's last bias is [mu, logvar]: the logvar half overflows exp()
        n = (h[enc_bias]["data_offsets"][1] - h[enc_bias]["data_offsets"][0]) // 4
        for i in range(n // 2, n):
            set_f32(h, b, enc_bias, i, 1e30)
    case("huge-logvar", edit_data=huge_logvar)

    def no_config(h):
        del h["__metadata__"]["extra.config"]
    case("no-config", edit_header=no_config)

    def unknown_key(h):
        c = json.loads(h["__metadata__"]["extra.config"])
        c["latnet"] = 8
        h["__metadata__"]["extra.config"] = json.dumps(c)
    case("stored-config-unknown-key", edit_header=unknown_key, edit_config=lambda c: c.update({"latnet": 8}))
    print(f"ok: bad checkpoints under {out / 'ckpt'} (from {weight}, {moment}, {enc_bias})")


if __name__ == "__main__":
    if sys.argv[1:2] == ["static"]:
        write_static(sys.argv[2])
    elif sys.argv[1:2] == ["check"]:
        check()
    elif sys.argv[1:2] == ["checkpoints"]:
        checkpoints(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
