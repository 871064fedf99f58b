#!/usr/bin/env python3
"""run_corpus.py APPS_DIR: drives every program over every file of the corpus of bad inputs.

For each line of MANIFEST.tsv and each program that can meet the file, the program runs in a fresh
sandbox (its own data, run folder and working directory) and must:
  1. exit with a status above 0 and below 128 (an error, not a crash or a signal);
  2. say what is wrong (the line's regex) and name the file;
  3. write nothing outside its run folder (every file of the sandbox and of the corpus is hashed
     before and after), and leave no new run folder behind when it refused to start one;
  4. leave every existing checkpoint byte-identical.
First, as a control, every program runs once on the good inputs and must succeed there, so that a
refusal below is the bad file's doing. The bad checkpoints (ckpt/*) are built from that good run by
make_corpus.py. Every file under fuzz/ and every case folder must have a manifest line.
"""
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import make_corpus  # noqa: E402

APPS = Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else None
TINY = ["--latent", "2", "--hidden", "8", "--hidden-layers", "1", "--batch", "10", "--threads", "1"]
SEQ = ["--epochs", "1", "--batch", "10", "--steps", "2", "--latent", "2", "--channels1", "4", "--channels2", "4",
       "--eval-examples", "4", "--posterior-examples", "4", "--posterior-points", "4", "--figure-samples", "2",
       "--threads", "1"]
GOOD_MNIST = HERE / "good" / "mnist"
GOOD_FOLDER = HERE / "good" / "folder"


def exe(name):
    return str(APPS / f"genvae-{name}")


# How each program meets a file: argv, given the sandbox paths. D: a data folder (or file), RUN: a run
# folder that exists (a copy of a trained run), NEW: a run folder the program would create.
def command(program, d, run, new):
    return {
        "train": [exe("train"), "--data", "mnist", "--data-dir", d, "--out", new, "--epochs", "1", "--log-every", "1"] + TINY,
        "train-cifar": [exe("train"), "--data", "cifar10", "--data-dir", d, "--out", new, "--epochs", "1"] + TINY,
        "train-folder": [exe("train"), "--data", f"folder:{d}", "--image-size", "8", "--out", new, "--epochs", "1"] + TINY,
        "train-config": [exe("train"), "--config", d, "--out", new, "--data-dir", str(GOOD_MNIST)],
        "train-resume": [exe("train"), "--resume", run, "--data-dir", d, "--epochs", "2", "--threads", "1"],
        "naive-bound": [exe("naive-bound"), "--data-dir", d, "--out", new, "--epochs", "1", "--batch", "10", "--hidden", "8",
                        "--latent", "2", "--hidden-layers", "1", "--spread-samples", "4", "--threads", "1"],
        "mnist-mlp": [exe("mnist-mlp"), "--data", d, "--epochs", "1", "--batch", "10", "--hidden", "8", "--threads", "1"],
        "classifier": [exe("classifier"), "--data-dir", d, "--out", new, "--epochs", "1", "--batch", "10", "--threads", "1"],
        "eval": [exe("eval"), run, "--data-dir", d, "--iwae-k", "2", "--iwae-examples", "4", "--mi-examples", "4",
                 "--threads", "1"],
        "sample": [exe("sample"), run, "--data-dir", d, "--n", "4", "--steps", "2", "--keep", "1", "--nn-examples", "4",
                   "--threads", "1"],
        "fig2": [exe("fig2"), run, "--data-dir", d, "--grid", "2", "--examples", "10", "--threads", "1"],
        "seqvae": [exe("seqvae"), "train", "--data", "mnist", "--data-dir", d, "--out", new] + SEQ,
        "seqvae-folder": [exe("seqvae"), "train", "--data", f"folder:{d}", "--image-size", "32", "--out", new] + SEQ,
    }[program]


# Virtual program lists of the manifest, by what the file is placed as.
EXPAND = {"mnist-idx": ["train", "eval", "naive-bound", "mnist-mlp", "classifier", "seqvae"],
          "folder-image": ["train-folder", "seqvae-folder"],
          "checkpoint-file": ["eval", "sample", "fig2", "train-resume"]}
CREATES = {"train", "train-cifar", "train-folder", "train-config", "naive-bound", "classifier", "seqvae",
           "seqvae-folder"}


def snapshot(*roots):
    out = {}
    for root in roots:
        for p in Path(root).rglob("*"):
            if p.is_file() and not p.is_symlink():
                out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
            elif p.is_dir():
                out[str(p) + "/"] = "dir"
    return out


def read_manifest():
    rows = []
    for n, line in enumerate((HERE / "MANIFEST.tsv").read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) != 5:
            sys.exit(f"FAIL: MANIFEST.tsv line {n}: expected 5 tab-separated columns, got {len(parts)}")
        case, programs, wrong, regex, names = parts
        rows.append((case, programs.split(), wrong, re.compile(regex), names.split("|")))
    return rows


def check_coverage(rows):
    listed = {r[0] for r in rows}
    want = {str(p.relative_to(HERE)) for p in (HERE / "fuzz").rglob("*") if p.is_file()}
    want |= {f"data/{p.name}" for p in (HERE / "data").iterdir()}
    want |= {str(p.relative_to(HERE)) for p in (HERE / "config").iterdir()}
    missing = sorted(want - listed)
    if missing:
        sys.exit(f"FAIL: corpus files without a MANIFEST.tsv line: {missing}")


class Sandbox:
    """A scratch folder with the data, run folders and working directory of one run."""

    def __init__(self, root, base_run):
        self.root = Path(tempfile.mkdtemp(dir=root))
        self.work = self.root / "work"
        self.work.mkdir()
        self.run = self.root / "run"
        shutil.copytree(base_run, self.run)
        self.new = self.root / "new-run"
        self.data = str(GOOD_MNIST)

    def place(self, case):
        """Puts a committed case's file where the programs meet it (ckpt/ cases are built: place_built)."""
        src = HERE / case
        if case.startswith(("data/", "config/")):  # read in place: the corpus is hashed before and after
            self.data = str(src)
        elif case.startswith("fuzz/idx/"):
            d = self.root / "mnist"
            shutil.copytree(GOOD_MNIST, d)
            (d / "t10k-images-idx3-ubyte.gz").unlink()
            shutil.copy(src, d / ("t10k-images-idx3-ubyte" + (".gz" if src.name.endswith(".gz") else "")))
            self.data = str(d)
        elif case.startswith("fuzz/image/"):
            d = self.root / "folder"
            shutil.copytree(GOOD_FOLDER, d)
            shutil.copy(src, d / "train" / "a" / ("bad" + src.suffix))
            self.data = str(d)
        elif case.startswith("fuzz/safetensors/"):
            shutil.copy(src, self.run / "checkpoint.safetensors")

    def place_built(self, run_folder):
        shutil.rmtree(self.run)
        shutil.copytree(run_folder, self.run)


def run_one(program, box, timeout=120):
    cmd = command(program, box.data, str(box.run), str(box.new))
    env = dict(os.environ, OMP_WAIT_POLICY="passive", OMP_NUM_THREADS="1")
    p = subprocess.run(cmd, cwd=box.work, capture_output=True, text=True, timeout=timeout, env=env)
    return p.returncode, p.stdout + p.stderr, cmd


def main():
    if APPS is None:
        sys.exit(__doc__)
    rows = read_manifest()
    check_coverage(rows)
    failures, runs = [], 0
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        base = tmp / "base"
        p = subprocess.run([exe("train"), "--data", "mnist", "--data-dir", str(GOOD_MNIST), "--out", str(base),
                            "--epochs", "1"] + TINY, capture_output=True, text=True)
        if p.returncode != 0:
            sys.exit(f"FAIL: the good base run failed:\n{p.stdout}{p.stderr}")
        make_corpus.checkpoints(base, tmp / "built")
        # the control: every program succeeds on the good inputs
        for program in ["train", "train-folder", "train-resume", "naive-bound", "mnist-mlp", "classifier", "eval", "sample",
                        "fig2", "seqvae", "seqvae-folder"]:
            box = Sandbox(tmp, base)
            if program in ("train-folder", "seqvae-folder"):
                box.data = str(GOOD_FOLDER)
            code, out, cmd = run_one(program, box)
            if code != 0:
                failures.append(f"control: {program} failed on good inputs (exit {code}): {' '.join(cmd)}\n{out[-2000:]}")
        corpus_before = snapshot(HERE)
        for case, programs, wrong, regex, names in rows:
            for program in [q for p in programs for q in EXPAND.get(p, [p])]:
                runs += 1
                box = Sandbox(tmp, base)
                if case.startswith("ckpt/"):
                    box.place_built(tmp / "built" / case)
                else:
                    box.place(case)
                before = snapshot(box.root)
                code, out, cmd = run_one(program, box)
                after = snapshot(box.root)
                where = f"{case} x {program} ({wrong}): {' '.join(cmd)}"
                problems = []
                if not 0 < code < 128:
                    problems.append(f"exit status {code}, expected 1..127")
                if not regex.search(out):
                    problems.append(f"the message does not match /{regex.pattern}/")
                if not any(n in out for n in names):
                    problems.append(f"the message does not name {' or '.join(names)}")
                run_prefix = str(box.run) + "/"
                changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
                outside = [k for k in changed if not k.startswith(run_prefix) and k != run_prefix]
                if outside:
                    problems.append(f"wrote outside its run folder: {outside[:5]}")
                if program in CREATES and box.new.exists():
                    problems.append(f"left a run folder behind: {box.new}")
                ckpts = [k for k in before if k.endswith(".safetensors")]
                touched = [k for k in ckpts if before[k] != after.get(k)]
                if touched:
                    problems.append(f"changed an existing checkpoint: {touched}")
                if problems:
                    failures.append(f"{where}\n  " + "\n  ".join(problems) + f"\n  output: {out.strip()[-1500:]}")
                else:
                    first = next((l for l in out.splitlines() if regex.search(l)), out.strip().splitlines()[-1])
                    print(f"ok: {case} x {program}: exit {code}: {first.strip()[:160]}")
        if snapshot(HERE) != corpus_before:
            failures.append("the corpus itself was changed by a run")
    for f in failures:
        print("FAIL:", f)
    print(f"{runs} runs over {len(rows)} corpus files, {len(failures)} failures")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
