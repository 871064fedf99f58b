#!/usr/bin/python3 -s
"""peer_w1_elbo.py: the PyTorch peer of genvae's W1 correctness check (issue: the generalized VAE).

Trains benchmark W1 in PyTorch: an MLP VAE, encoder 784-500-500-(2x20) and decoder 20-500-500-784
with softplus, Bernoulli likelihood on logits, Gaussian q with analytic KL to N(0, I), Adam (lr 1e-3,
betas 0.9/0.999, eps 1e-8), batch 100, dynamic binarization of the 60,000 training digits, 10 epochs.
Then reports the test ELBO (one z per example, nats per example) on the 10,000 test digits binarized
once with a fixed seed, and the time per epoch. Needs Debian's python3-torch (run with /usr/bin/python3).

  /usr/bin/python3 -s bench/peer_w1_elbo.py   (-s: ignore user site-packages, whose numpy may not match torch) --data ../shared/data/mnist --epochs 10 --threads 2
"""
import argparse, gzip, json, math, os, struct, time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def read_idx(path):
    opener = gzip.open if open(path, "rb").read(2) == b"\x1f\x8b" else open
    with opener(path, "rb") as f:
        magic = struct.unpack(">I", f.read(4))[0]
        dims = [struct.unpack(">I", f.read(4))[0] for _ in range(magic & 0xFF)]
        return np.frombuffer(f.read(), dtype=np.uint8).reshape(dims)


def load(dir_, split):
    for suffix in ("", ".gz"):
        p = os.path.join(dir_, f"{split}-images-idx3-ubyte{suffix}")
        if os.path.exists(p):
            return torch.from_numpy(read_idx(p).astype(np.float32) / 255.0).reshape(-1, 784)
    raise FileNotFoundError(f"no {split}-images-idx3-ubyte[.gz] in {dir_}")


class W1(nn.Module):
    def __init__(self, z=20, h=500):
        super().__init__()
        self.enc = nn.Sequential(nn.Linear(784, h), nn.Softplus(), nn.Linear(h, h), nn.Softplus(), nn.Linear(h, 2 * z))
        self.dec = nn.Sequential(nn.Linear(z, h), nn.Softplus(), nn.Linear(h, h), nn.Softplus(), nn.Linear(h, 784))

    def terms(self, x):
        mu, logvar = self.enc(x).chunk(2, dim=1)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        logits = self.dec(z)
        rec = -F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(1)
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1)
        return rec, kl


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.environ.get("GENVAE_MNIST_DIR", "../shared/data/mnist"))
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", help="also write the figures to this file")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    train, test = load(a.data, "train"), load(a.data, "t10k")
    g = torch.Generator().manual_seed(12345)
    test_bin = torch.bernoulli(test, generator=g)
    model = W1()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
    epoch_times = []
    for epoch in range(1, a.epochs + 1):
        t0 = time.perf_counter()
        perm = torch.randperm(train.shape[0])
        total = 0.0
        for s in range(0, train.shape[0], a.batch):
            x = torch.bernoulli(train[perm[s:s + a.batch]])
            rec, kl = model.terms(x)
            loss = (kl - rec).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * x.shape[0]
        epoch_times.append(time.perf_counter() - t0)
        with torch.no_grad():
            rec, kl = zip(*(model.terms(test_bin[s:s + 1000]) for s in range(0, 10000, 1000)))
            elbo = (torch.cat(rec) - torch.cat(kl)).mean().item()
        print(f"epoch {epoch}: train -ELBO {total / train.shape[0]:.3f}, test ELBO {elbo:.3f} nats, {epoch_times[-1]:.1f} s",
              flush=True)
    out = {"peer": f"pytorch {torch.__version__}", "threads": a.threads, "epochs": a.epochs, "test_elbo": elbo,
           "seconds_per_epoch": sum(epoch_times) / len(epoch_times)}
    print(json.dumps(out))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
