#!/usr/bin/env python3
"""check_run.py: checks of genvae-train's run directories and checkpoints, for the shell tests.

  check_run.py files RUN_DIR EPOCHS     config.json, metrics.jsonl/test.jsonl lines (JSON, finite
                                        numbers), every PNG (signature, chunk CRCs, IHDR, inflatable
                                        IDAT of the right size), the checkpoint's header
  check_run.py same CKPT_A CKPT_B       exit 1 unless the two checkpoints hold bit-identical tensors
  check_run.py differ CKPT_A CKPT_B     exit 1 unless some tensor differs (the comparison can fail)
  check_run.py meta CKPT KEY            prints the checkpoint's metadata value KEY
  check_run.py finite CKPT              exit 1 unless every float tensor in the checkpoint is finite
  check_run.py eval EVAL_JSON LATENT    the fields of genvae-eval's report
"""
import json
import math
import os
import struct
import sys
import zlib


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    meta = header.pop("__metadata__", {})
    tensors = {k: (v["dtype"], v["shape"], data[v["data_offsets"][0]:v["data_offsets"][1]]) for k, v in header.items()}
    return meta, tensors


def check_png(path):
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:8] != b"\x89PNG\r\n\x1a\n":
        fail(f"{path}: not a PNG (bad signature)")
    pos, idat, ihdr, end = 8, b"", None, False
    while pos < len(raw):
        (length,) = struct.unpack(">I", raw[pos:pos + 4])
        kind, body = raw[pos + 4:pos + 8], raw[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", raw[pos + 8 + length:pos + 12 + length])
        if zlib.crc32(kind + body) != crc:
            fail(f"{path}: bad CRC in chunk {kind}")
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            end = True
        pos += 12 + length
    if ihdr is None or not end:
        fail(f"{path}: missing IHDR or IEND")
    w, h, depth, color = ihdr[:4]
    channels = {0: 1, 2: 3, 4: 2, 6: 4}.get(color)
    if depth != 8 or channels is None or w == 0 or h == 0:
        fail(f"{path}: unexpected IHDR {ihdr}")
    if len(zlib.decompress(idat)) != h * (1 + w * channels):
        fail(f"{path}: image data has the wrong size for {w}x{h}x{channels}")
    return w, h


def check_jsonl(path, required):
    rows = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                fail(f"{path} line {n}: not JSON: {e}")
            for k in required:
                if k not in row:
                    fail(f"{path} line {n}: no '{k}'")
            for k, v in row.items():
                if isinstance(v, float) and not math.isfinite(v):
                    fail(f"{path} line {n}: {k} = {v}")
            rows.append(row)
    return rows


def files(run, epochs):
    epochs = int(epochs)
    config = json.load(open(os.path.join(run, "config.json")))
    for k in ("data", "latent", "likelihood", "regularizer", "epochs", "seed", "out", "data-shape", "parameters"):
        if k not in config:
            fail(f"config.json has no '{k}'")
    metrics = check_jsonl(os.path.join(run, "metrics.jsonl"),
                          ["step", "epoch", "loss", "reconstruction", "regularizer", "weight", "lr", "time"])
    if not metrics:
        fail("metrics.jsonl is empty")
    steps = [r["step"] for r in metrics]
    if steps != sorted(set(steps)):
        fail(f"metrics.jsonl steps are not increasing: {steps}")
    test = check_jsonl(os.path.join(run, "test.jsonl"), ["epoch", "step", "test_elbo", "test_reconstruction", "test_kl"])
    if [r["epoch"] for r in test] != list(range(1, epochs + 1)):
        fail(f"test.jsonl epochs are {[r['epoch'] for r in test]}, expected 1..{epochs}")
    info = check_jsonl(os.path.join(run, "information.jsonl"),
                       ["step", "epoch", "mi", "mi_ceiling", "mi_examples", "kl", "nll_per_pixel"])
    for r in info:
        if not (r["mi"] <= r["mi_ceiling"] + 1e-9 and abs(r["mi_ceiling"] - math.log(r["mi_examples"])) < 1e-9):
            fail(f"information.jsonl: I_q(x;z) {r['mi']} against its ceiling {r['mi_ceiling']} (M = {r['mi_examples']})")
        if not (r["kl"] >= 0 and r["nll_per_pixel"] > 0):
            fail(f"information.jsonl: KL {r['kl']}, NLL per pixel {r['nll_per_pixel']}")
    if sorted({r["epoch"] for r in info}) != list(range(1, epochs + 1)):
        fail(f"information.jsonl covers epochs {sorted({r['epoch'] for r in info})}, expected 1..{epochs}")
    if [r["step"] for r in info] != sorted({r["step"] for r in info}):
        fail(f"information.jsonl steps are not increasing: {[r['step'] for r in info]}")
    pngs = ["curves.png"]
    for e in range(1, epochs + 1):
        pngs.append(f"recon/epoch-{e:03d}.png")
        if config.get("decoder", "factorized") == "factorized":  # a PixelCNN has no closed-form mean
            pngs.append(f"samples/epoch-{e:03d}-mean.png")
        if config["likelihood"] == "bernoulli":
            pngs.append(f"samples/epoch-{e:03d}-draw.png")
    for p in pngs:
        w, h = check_png(os.path.join(run, p))
    meta, tensors = read_safetensors(os.path.join(run, "checkpoint.safetensors"))
    if int(meta["epoch"]) != epochs or int(meta["step"]) != test[-1]["step"]:
        fail(f"checkpoint metadata {meta['epoch']=} {meta['step']=}")
    if not any(k.startswith("model.") for k in tensors) or not any(k.startswith("optim.") for k in tensors):
        fail(f"checkpoint lacks model or optimizer tensors: {sorted(tensors)[:5]}")
    if "extra.config" not in meta:
        fail("checkpoint metadata has no extra.config")
    print(f"ok: {run}: config, {len(metrics)} metrics lines, {len(test)} test lines, {len(pngs)} PNGs, checkpoint "
          f"at step {meta['step']}")


def same(a, b, want_same=True):
    _, ta = read_safetensors(a)
    _, tb = read_safetensors(b)
    diff = sorted(set(ta) ^ set(tb)) + sorted(k for k in set(ta) & set(tb) if ta[k] != tb[k])
    if want_same and diff:
        fail(f"{a} and {b} differ in {len(diff)} tensors, e.g. {diff[:5]}")
    if not want_same and not diff:
        fail(f"{a} and {b} hold identical tensors")
    print(f"ok: {a} and {b} " + ("are bit-identical" if want_same else f"differ ({len(diff)} tensors)"))


def finite(path):
    _, tensors = read_safetensors(path)
    fmt = {"F32": "f", "F64": "d"}
    for k, (dtype, shape, raw) in tensors.items():
        if dtype in fmt:
            vals = struct.unpack(f"<{len(raw) // struct.calcsize(fmt[dtype])}{fmt[dtype]}", raw)
            if not all(math.isfinite(v) for v in vals):
                fail(f"{path}: tensor {k} is not finite")
    print(f"ok: every tensor of {path} is finite")


def eval_report(path, latent):
    r = json.load(open(path))
    for k in ("elbo", "reconstruction", "kl", "iwae_log_likelihood", "mutual_information", "mi_ceiling"):
        if not isinstance(r.get(k), (int, float)) or not math.isfinite(r[k]):
            fail(f"{path}: {k} = {r.get(k)}")
    if len(r["kl_per_dimension"]) != int(latent):
        fail(f"{path}: {len(r['kl_per_dimension'])} KL values for {latent} latent dimensions")
    if not 0 <= r["active_units"] <= int(latent):
        fail(f"{path}: active_units = {r['active_units']}")
    if abs(sum(r["kl_per_dimension"]) - r["kl"]) > 1e-3 * max(1.0, abs(r["kl"])):
        fail(f"{path}: KL per dimension sums to {sum(r['kl_per_dimension'])}, the KL is {r['kl']}")
    if abs(r["elbo"] - (r["reconstruction"] - r["kl"])) > 1e-3 * max(1.0, abs(r["elbo"])):
        fail(f"{path}: elbo != reconstruction - kl")
    if not (r["mutual_information"] <= r["mi_ceiling"] + 1e-6 and abs(r["mi_ceiling"] - math.log(r["mi_examples"])) < 1e-9):
        fail(f"{path}: MI {r['mutual_information']} vs ceiling {r['mi_ceiling']} (M = {r['mi_examples']})")
    if r["iwae_log_likelihood"] < r["elbo"] - 0.05 * abs(r["elbo"]):
        fail(f"{path}: IWAE bound {r['iwae_log_likelihood']} far below the ELBO {r['elbo']}")
    print(f"ok: {path}: ELBO {r['elbo']:.3f}, IWAE {r['iwae_log_likelihood']:.3f}, AU {r['active_units']}, "
          f"MI {r['mutual_information']:.3f} <= {r['mi_ceiling']:.3f}")


def main(argv):
    cmd, args = argv[1], argv[2:]
    if cmd == "files":
        files(*args)
    elif cmd == "same":
        same(*args)
    elif cmd == "differ":
        same(*args, want_same=False)
    elif cmd == "meta":
        print(read_safetensors(args[0])[0][args[1]])
    elif cmd == "finite":
        finite(*args)
    elif cmd == "eval":
        eval_report(*args)
    else:
        fail(f"unknown command {cmd}")


if __name__ == "__main__":
    main(sys.argv)
