#!/usr/bin/python3 -s
"""peer.py: the PyTorch peer of genvae-bench (../shared/docs/BENCHMARKS.md).

Builds one workload's model in PyTorch, float32 on the CPU with the given thread count, and times
full training steps (forward, loss, backward, Adam lr 1e-3, betas 0.9/0.999, eps 1e-8) on random
inputs of the right shape and range: the median milliseconds per step over --steps steps after
--warmup warm-ups, and the peak resident memory of this process. Prints one JSON line. genvae-bench
runs it once per measurement (a fresh process each, so the peak memory is the workload's own).

  PYTHONNOUSERSITE=1 python3 bench/peer.py --workload W1 --batch 100 --threads 2
  PYTHONNOUSERSITE=1 python3 bench/peer.py --gemm 100,500,784,n,t --threads 2   # torch.mm (MKL)
  PYTHONNOUSERSITE=1 python3 bench/peer.py --info                                # version and BLAS

PYTHONNOUSERSITE=1 (or python3 -s) keeps a user-site numpy built for another torch out of the way.
"""
import argparse, json, re, statistics, time

import torch
import torch.nn as nn
import torch.nn.functional as F


class W1(nn.Module):
    """MLP VAE: encoder 784-500-500-(2x20), decoder 20-500-500-784, softplus; Bernoulli on logits."""

    def __init__(self, z=20, h=500):
        super().__init__()
        self.enc = nn.Sequential(nn.Linear(784, h), nn.Softplus(), nn.Linear(h, h), nn.Softplus(), nn.Linear(h, 2 * z))
        self.dec = nn.Sequential(nn.Linear(z, h), nn.Softplus(), nn.Linear(h, h), nn.Softplus(), nn.Linear(h, 784))

    def loss(self, x):
        mu, logvar = self.enc(x.flatten(1)).chunk(2, dim=1)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        logits = self.dec(z)
        rec = F.binary_cross_entropy_with_logits(logits, x.flatten(1), reduction="sum") / x.shape[0]
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum() / x.shape[0]
        return rec + kl


class W2(nn.Module):
    """Conv VAE z=2: the encoder and decoder of BENCHMARKS.md W2; sigmoid output, squared error + KL."""

    def __init__(self, z=2):
        super().__init__()
        self.enc = nn.Sequential(
            nn.Conv2d(1, 64, 4, 2, 1), nn.LeakyReLU(0.1), nn.Conv2d(64, 128, 4, 2, 1), nn.LeakyReLU(0.1),
            nn.Flatten(), nn.Linear(6272, 1024), nn.LeakyReLU(0.1), nn.Linear(1024, 2 * z))
        self.dec = nn.Sequential(
            nn.Linear(z, 1024), nn.ReLU(), nn.Linear(1024, 6272), nn.ReLU(), nn.Unflatten(1, (128, 7, 7)),
            nn.ConvTranspose2d(128, 64, 4, 2, 1), nn.ReLU(), nn.ConvTranspose2d(64, 1, 4, 2, 1), nn.Sigmoid())

    def loss(self, x):
        mu, logvar = self.enc(x).chunk(2, dim=1)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        xhat = self.dec(z)
        se = (xhat - x).pow(2).sum() / x.shape[0]
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum() / x.shape[0]
        return se + kl


class MaskedConv2d(nn.Conv2d):
    """PixelCNN's masked convolution as PyTorch code usually writes it: the weight times a 0/1 mask
    (type A hides the centre and what follows it in raster order, B only what follows)."""

    def __init__(self, kind, cin, cout, k):
        super().__init__(cin, cout, k, padding=k // 2)
        mask = torch.ones(k, k)
        mask[k // 2, k // 2 + (1 if kind == "B" else 0):] = 0
        mask[k // 2 + 1:] = 0
        self.register_buffer("mask", mask)

    def forward(self, x):
        return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)


class W3(nn.Module):
    """PixelVAE: conv encoder (z = 20), a masked gated PixelCNN decoder (7x7 A 1->128, 6 residual 3x3 B
    64->128 plus linear(z) per layer, gated to 64), ReLU 1x1 64->64 ReLU 1x1 64->1; negative ELBO."""

    def __init__(self, z=20):
        super().__init__()
        self.enc = nn.Sequential(nn.Conv2d(1, 64, 4, 2, 1), nn.ReLU(), nn.Conv2d(64, 128, 4, 2, 1), nn.ReLU(),
                                 nn.Flatten(), nn.Linear(6272, 2 * z))
        self.first = MaskedConv2d("A", 1, 128, 7)
        self.layers = nn.ModuleList([MaskedConv2d("B", 64, 128, 3) for _ in range(6)])
        self.cond = nn.Linear(z, 6 * 128)
        self.head1, self.head2 = nn.Conv2d(64, 64, 1), nn.Conv2d(64, 1, 1)

    @staticmethod
    def gate(a):
        f, g = a.chunk(2, dim=1)
        return torch.tanh(f) * torch.sigmoid(g)

    def loss(self, x):
        mu, logvar = self.enc(x).chunk(2, dim=1)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        c = self.cond(z)
        h = self.gate(self.first(x))
        for l, layer in enumerate(self.layers):
            h = h + self.gate(layer(h) + c[:, 128 * l:128 * (l + 1), None, None])
        logits = self.head2(F.relu(self.head1(F.relu(h))))
        rec = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / x.shape[0]
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum() / x.shape[0]
        return rec + kl


def peak_rss_mib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def blas_info():
    """Which BLAS this torch runs its CPU matrix products on, from its build configuration."""
    cfg = torch.__config__.show()
    found = re.search(r"BLAS_INFO=(\w+)", cfg)
    blas = found.group(1) if found else "unknown"
    mkl = next((l.strip(" -") for l in cfg.splitlines() if "Math Kernel Library" in l), "")
    return {"torch": torch.__version__, "blas": blas, "mkl": mkl, "mkl_available": torch.backends.mkl.is_available()}


def time_gemm(spec, threads):
    """GFLOP/s of torch.mm on C (M, N) = op(A) @ op(B), op = transpose when the flag is t."""
    m, n, k, ta, tb = spec.split(",")
    m, n, k = int(m), int(n), int(k)
    a = torch.rand(k, m).t() if ta == "t" else torch.rand(m, k)
    b = torch.rand(n, k).t() if tb == "t" else torch.rand(k, n)
    out = torch.empty(m, n)
    torch.mm(a, b, out=out)
    t0 = time.perf_counter()
    torch.mm(a, b, out=out)
    once = max(time.perf_counter() - t0, 1e-7)
    reps = max(3, min(200, int(0.05 / once)))  # about 50 ms per repetition
    rates = []
    for _ in range(7):
        t0 = time.perf_counter()
        for _ in range(reps):
            torch.mm(a, b, out=out)
        rates.append(2.0 * m * n * k * reps / (time.perf_counter() - t0) / 1e9)
    return {"gflops": statistics.median(rates), "gflops_best": max(rates), "threads": torch.get_num_threads()}


class W4Step(nn.Module):
    """One step of W4: an encoder of x (conv 3->64, conv 64->128, both 4x4 s2 p1 + leaky ReLU 0.1,
    linear 8192->2z), linear z->8192 as 128x8x8, for t > 0 plus the same two convolutions over the
    previous output, then convT 128->64, ReLU, convT 64->3; for t > 0 mixed with the previous output
    by r = sigmoid(a), a learned scalar."""

    def __init__(self, t, z=64):
        super().__init__()
        self.enc = nn.Sequential(nn.Conv2d(3, 64, 4, 2, 1), nn.LeakyReLU(0.1), nn.Conv2d(64, 128, 4, 2, 1),
                                 nn.LeakyReLU(0.1), nn.Flatten(), nn.Linear(8192, 2 * z))
        self.from_z = nn.Linear(z, 8192)
        self.down = nn.Sequential(nn.Conv2d(3, 64, 4, 2, 1), nn.LeakyReLU(0.1), nn.Conv2d(64, 128, 4, 2, 1),
                                  nn.LeakyReLU(0.1)) if t > 0 else None
        self.up = nn.Sequential(nn.ConvTranspose2d(128, 64, 4, 2, 1), nn.ReLU(), nn.ConvTranspose2d(64, 3, 4, 2, 1))
        self.gate = nn.Parameter(torch.zeros(1)) if t > 0 else None


class W4(nn.Module):
    """Sequential VAE, 4 steps, 32x32x3, z = 64 per step; the sum over steps of squared error + KL,
    the previous output detached."""

    def __init__(self, steps=4):
        super().__init__()
        self.steps = nn.ModuleList([W4Step(t) for t in range(steps)])

    def loss(self, x):
        total, prev = 0, None
        for s in self.steps:
            mu, logvar = s.enc(x).chunk(2, dim=1)
            z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
            h = s.from_z(z).view(-1, 128, 8, 8)
            if prev is not None:
                h = h + s.down(prev)
            out = s.up(h)
            if prev is not None:
                r = torch.sigmoid(s.gate)
                out = r * out + (1 - r) * prev
            se = (out - x).pow(2).sum() / x.shape[0]
            kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum() / x.shape[0]
            total = total + se + kl
            prev = out.detach()
        return total


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workload", choices=["W1", "W2", "W3", "W4"])
    ap.add_argument("--gemm", help="M,N,K,TA,TB (TA, TB: n or t): time torch.mm on that product instead")
    ap.add_argument("--info", action="store_true", help="print the torch version and its BLAS")
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--device", default="cpu", help="cpu or cuda[:N]: where the model and the batch live")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if a.info:
        print(json.dumps(blas_info()))
        return
    if a.gemm:
        print(json.dumps(time_gemm(a.gemm, a.threads)))
        return
    if not a.workload:
        ap.error("one of --workload, --gemm or --info is needed")
    torch.manual_seed(7)
    x = torch.rand(a.batch, 1, 28, 28)
    if a.workload == "W1":
        model, x = W1(), torch.bernoulli(x)
    elif a.workload == "W3":
        model, x = W3(), torch.bernoulli(x)
    elif a.workload == "W4":
        model, x = W4(), torch.rand(a.batch, 3, 32, 32)
    else:
        model = W2()
    dev = torch.device(a.device)
    model, x = model.to(dev), x.to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8)

    def step():
        opt.zero_grad()
        loss = model.loss(x)
        loss.backward()
        opt.step()
        if dev.type == "cuda":  # the kernels run asynchronously: time them to the end
            torch.cuda.synchronize(dev)
        return loss.item()

    for _ in range(a.warmup):
        step()
    times = []
    for _ in range(a.steps):
        t0 = time.perf_counter()
        loss = step()
        times.append(1e3 * (time.perf_counter() - t0))
    print(json.dumps({"ms_per_step": statistics.median(times), "ms_min": min(times), "peak_rss_mib": peak_rss_mib(),
                      "loss": loss, "torch": torch.__version__, "threads": torch.get_num_threads(),
                      "device": str(dev)}))


if __name__ == "__main__":
    main()
