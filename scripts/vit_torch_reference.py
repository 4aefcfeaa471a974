#!/usr/bin/env python3
"""Train the MatViT architecture at one fixed width in PyTorch, with the recipe of `matformer train
matvit-fashion --objective baseline:<g>`: the same model (pre-norm, class token, learned positions, GELU),
init, AdamW (decay on matrices only), warmup + cosine schedule, gradient clipping, batch size and
augmentation. It answers one question: does our trainer reach the accuracy PyTorch reaches on the same
recipe, or does something in ours cap it? Needs `.venv-ref` (see scripts/README.md).

    .venv-ref/bin/python scripts/vit_torch_reference.py --steps 5000
"""

import argparse
import gzip
import math
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

DATA = "/usr/share/datasets/fashion-mnist"


def idx(path):
    with gzip.open(path) as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


class Block(nn.Module):
    def __init__(self, d, heads, dff, eps):
        super().__init__()
        self.n1, self.n2 = nn.LayerNorm(d, eps=eps), nn.LayerNorm(d, eps=eps)
        self.qkv, self.o = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.up, self.down = nn.Linear(d, dff), nn.Linear(dff, d)
        self.heads = heads

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(self.n1(x)).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, t, d)
        x = x + self.o(a)
        return x + self.down(F.gelu(self.up(self.n2(x))))


class ViT(nn.Module):
    def __init__(self, patch, d, layers, heads, dff, eps=1e-12, pool="cls"):
        super().__init__()
        self.patch, self.pool = patch, pool
        n = (28 // patch) ** 2
        self.embed = nn.Linear(patch * patch, d)
        self.cls = nn.Parameter(torch.randn(d) * 0.02)
        self.pos = nn.Parameter(torch.randn(n + 1, d) * 0.02)
        self.blocks = nn.ModuleList(Block(d, heads, dff, eps) for _ in range(layers))
        self.norm = nn.LayerNorm(d, eps=eps)
        self.head = nn.Linear(d, 10)
        proj_std = 0.02 / math.sqrt(2 * layers)
        for name, p in self.named_parameters():
            if name.endswith("bias"):
                nn.init.zeros_(p)
            elif "norm" in name or name.split(".")[-2:-1] in (["n1"], ["n2"]):
                nn.init.ones_(p)
            elif p.dim() == 2 and name not in ("pos",):
                nn.init.normal_(p, std=proj_std if (".o." in name or ".down." in name) else 0.02)

    def forward(self, img):
        b, p = img.shape[0], self.patch
        x = img.view(b, 28 // p, p, 28 // p, p).permute(0, 1, 3, 2, 4).reshape(b, -1, p * p)
        x = torch.cat([self.cls.expand(b, 1, -1), self.embed(x)], 1) + self.pos
        for blk in self.blocks:
            x = blk(x)
        # `mean` (global average pooling over the patch tokens) is not in our model: an experiment.
        return self.head(self.norm(x[:, 0] if self.pool == "cls" else x[:, 1:].mean(1)))


def augment(x, rng, shift, flip):
    b = x.shape[0]
    out = torch.zeros_like(x)
    pad = F.pad(x, (shift, shift, shift, shift))
    for i in range(b):
        dy, dx = rng.integers(-shift, shift + 1, 2) if shift else (0, 0)
        img = pad[i, shift - dy : shift - dy + 28, shift - dx : shift - dx + 28]
        out[i] = img.flip(-1) if flip and rng.integers(2) else img
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=5000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--patch", type=int, default=4)
    ap.add_argument("--d", type=int, default=64)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--dff", type=int, default=256)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--wd", type=float, default=0.05)
    ap.add_argument("--warmup", type=int, default=500)
    ap.add_argument("--shift", type=int, default=1)
    ap.add_argument("--no-flip", action="store_true")
    ap.add_argument("--label-smoothing", type=float, default=0.0)
    ap.add_argument("--pool", choices=["cls", "mean"], default="cls")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    xtr = torch.tensor(idx(f"{DATA}/train-images-idx3-ubyte.gz"), dtype=torch.float32) / 255
    ytr = torch.tensor(idx(f"{DATA}/train-labels-idx1-ubyte.gz"), dtype=torch.long)
    xte = torch.tensor(idx(f"{DATA}/t10k-images-idx3-ubyte.gz"), dtype=torch.float32) / 255
    yte = torch.tensor(idx(f"{DATA}/t10k-labels-idx1-ubyte.gz"), dtype=torch.long)
    model = ViT(a.patch, a.d, a.layers, a.heads, a.dff, pool=a.pool)
    decay = [p for n, p in model.named_parameters() if n.endswith("weight") and p.dim() == 2]
    rest = [p for n, p in model.named_parameters() if not (n.endswith("weight") and p.dim() == 2)]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": a.wd}, {"params": rest, "weight_decay": 0.0}],
        lr=a.lr,
        betas=(0.9, 0.95),
        eps=1e-8,
    )

    def lr_at(step):
        if step < a.warmup:
            return a.lr * (step + 1) / a.warmup
        p = min((step - a.warmup) / max(a.steps - a.warmup, 1), 1.0)
        lo = 0.1 * a.lr
        return lo + 0.5 * (a.lr - lo) * (1 + math.cos(math.pi * p))

    def test():
        model.eval()
        with torch.no_grad():
            logits = torch.cat([model(xte[i : i + 500]) for i in range(0, len(xte), 500)])
        model.train()
        return F.cross_entropy(logits, yte).item(), (logits.argmax(1) == yte).float().mean().item()

    order, pos, t0 = rng.permutation(len(xtr)), 0, time.time()
    for step in range(a.steps):
        if pos + a.batch > len(order):
            order, pos = rng.permutation(len(xtr)), 0
        ids = torch.tensor(order[pos : pos + a.batch])
        pos += a.batch
        x = augment(xtr[ids], rng, a.shift, not a.no_flip)
        loss = F.cross_entropy(model(x), ytr[ids], label_smoothing=a.label_smoothing)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        opt.step()
        if (step + 1) % max(a.steps // 5, 1) == 0 or step + 1 == a.steps:
            tl, acc = test()
            ips = (step + 1) * a.batch / (time.time() - t0)
            print(f"step {step + 1}/{a.steps} test loss {tl:.4f} acc {acc:.4f} ({ips:.0f} img/s)", flush=True)


if __name__ == "__main__":
    main()
