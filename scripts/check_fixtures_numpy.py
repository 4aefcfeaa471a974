#!/usr/bin/env python3
"""Independent NumPy forward passes over tests/fixtures/hf/<arch>/ (no torch, no
transformers): reads config.json + model.safetensors, slices the FFNs, and compares
with reference.safetensors. It is a readable spec of the conventions a Rust importer
must follow (tensor names, layouts, RoPE style, GQA head mapping, activations).

Usage: .venv-ref/bin/python scripts/check_fixtures_numpy.py [tests/fixtures/hf]
"""

import json
import math
import os
import sys

import numpy as np
from safetensors.numpy import load_file
from safetensors import safe_open


def layernorm(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def rmsnorm(x, w, eps):
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * w


def softmax(x):
    x = x - x.max(-1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(-1, keepdims=True)


def gelu_erf(x):
    return 0.5 * x * (1.0 + np.vectorize(math.erf)(x / math.sqrt(2.0)))


def gelu_tanh(x):  # "gelu_new"
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def silu(x):
    return x / (1.0 + np.exp(-x))


def attention(q, k, v, causal):
    # q: [B, H, T, D], k/v: [B, H, T, D]
    s = q @ k.transpose(0, 1, 3, 2) / math.sqrt(q.shape[-1])
    if causal:
        t = s.shape[-1]
        s = s + np.triu(np.full((t, t), -np.inf), 1)
    return softmax(s) @ v


def llama(cfg, W, ids, widths):
    B, T = ids.shape
    d, H, KV = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = cfg.get("head_dim") or d // H
    eps = cfg["rms_norm_eps"]
    theta = cfg.get("rope_theta") or cfg["rope_parameters"]["rope_theta"]
    # RoPE, HF "rotate_half" (non-interleaved) convention: pairs (i, i + hd/2).
    inv = 1.0 / theta ** (np.arange(0, hd, 2, dtype=np.float64) / hd)
    ang = np.arange(T)[:, None] * inv[None, :]
    cos = np.concatenate([np.cos(ang)] * 2, -1)
    sin = np.concatenate([np.sin(ang)] * 2, -1)

    def rope(x):
        x1, x2 = x[..., : hd // 2], x[..., hd // 2:]
        return x * cos + np.concatenate([-x2, x1], -1) * sin

    x = W["model.embed_tokens.weight"][ids].astype(np.float64)
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        h = rmsnorm(x, W[p + "input_layernorm.weight"], eps)
        q = (h @ W[p + "self_attn.q_proj.weight"].T).reshape(B, T, H, hd).transpose(0, 2, 1, 3)
        k = (h @ W[p + "self_attn.k_proj.weight"].T).reshape(B, T, KV, hd).transpose(0, 2, 1, 3)
        v = (h @ W[p + "self_attn.v_proj.weight"].T).reshape(B, T, KV, hd).transpose(0, 2, 1, 3)
        q, k = rope(q), rope(k)
        # GQA: query head j uses kv head j // (H // KV).
        k = np.repeat(k, H // KV, axis=1)
        v = np.repeat(v, H // KV, axis=1)
        a = attention(q, k, v, causal=True).transpose(0, 2, 1, 3).reshape(B, T, H * hd)
        x = x + a @ W[p + "self_attn.o_proj.weight"].T
        h = rmsnorm(x, W[p + "post_attention_layernorm.weight"], eps)
        m = widths[i]
        g = h @ W[p + "mlp.gate_proj.weight"][:m].T
        u = h @ W[p + "mlp.up_proj.weight"][:m].T
        x = x + (silu(g) * u) @ W[p + "mlp.down_proj.weight"][:, :m].T
    x = rmsnorm(x, W["model.norm.weight"], eps)
    lm = W["lm_head.weight"] if "lm_head.weight" in W else W["model.embed_tokens.weight"]
    return {"logits": x @ lm.T}


def gpt2(cfg, W, ids, widths):
    B, T = ids.shape
    d, H = cfg["n_embd"], cfg["n_head"]
    hd = d // H
    eps = cfg["layer_norm_epsilon"]
    act = {"gelu_new": gelu_tanh, "gelu": gelu_erf}[cfg["activation_function"]]
    x = (W["transformer.wte.weight"][ids] + W["transformer.wpe.weight"][np.arange(T)]).astype(np.float64)
    for i in range(cfg["n_layer"]):
        p = f"transformer.h.{i}."
        h = layernorm(x, W[p + "ln_1.weight"], W[p + "ln_1.bias"], eps)
        # Conv1D: weight is [in, out], y = x @ W + b. c_attn packs q|k|v along out.
        qkv = h @ W[p + "attn.c_attn.weight"] + W[p + "attn.c_attn.bias"]
        q, k, v = [t.reshape(B, T, H, hd).transpose(0, 2, 1, 3) for t in np.split(qkv, 3, -1)]
        a = attention(q, k, v, causal=True).transpose(0, 2, 1, 3).reshape(B, T, d)
        x = x + a @ W[p + "attn.c_proj.weight"] + W[p + "attn.c_proj.bias"]
        h = layernorm(x, W[p + "ln_2.weight"], W[p + "ln_2.bias"], eps)
        m = widths[i]
        f = act(h @ W[p + "mlp.c_fc.weight"][:, :m] + W[p + "mlp.c_fc.bias"][:m])
        x = x + f @ W[p + "mlp.c_proj.weight"][:m, :] + W[p + "mlp.c_proj.bias"]
    x = layernorm(x, W["transformer.ln_f.weight"], W["transformer.ln_f.bias"], eps)
    return {"logits": x @ W["transformer.wte.weight"].T}  # tied lm_head (absent from file)


def vit(cfg, W, pv, widths):
    B, C, S, _ = pv.shape
    P, d, H = cfg["patch_size"], cfg["hidden_size"], cfg["num_attention_heads"]
    hd = d // H
    eps = cfg["layer_norm_eps"]
    n = S // P
    # Conv2d(k=P, stride=P) == per-patch matmul; patches in row-major (y, x) order,
    # each patch flattened as (c, dy, dx) to match weight [d, C, P, P].
    patches = pv.reshape(B, C, n, P, n, P).transpose(0, 2, 4, 1, 3, 5).reshape(B, n * n, C * P * P)
    pw = W["vit.embeddings.patch_embeddings.projection.weight"].reshape(d, -1)
    x = patches @ pw.T + W["vit.embeddings.patch_embeddings.projection.bias"]
    cls = np.broadcast_to(W["vit.embeddings.cls_token"], (B, 1, d))
    x = np.concatenate([cls, x], 1) + W["vit.embeddings.position_embeddings"]
    x = x.astype(np.float64)
    T = x.shape[1]
    for i in range(cfg["num_hidden_layers"]):
        p = f"vit.encoder.layer.{i}."

        def lin(h, name):
            return h @ W[p + name + ".weight"].T + W[p + name + ".bias"]

        h = layernorm(x, W[p + "layernorm_before.weight"], W[p + "layernorm_before.bias"], eps)
        q, k, v = [lin(h, f"attention.attention.{n_}").reshape(B, T, H, hd).transpose(0, 2, 1, 3)
                   for n_ in ("query", "key", "value")]
        a = attention(q, k, v, causal=False).transpose(0, 2, 1, 3).reshape(B, T, d)
        x = x + lin(a, "attention.output.dense")
        h = layernorm(x, W[p + "layernorm_after.weight"], W[p + "layernorm_after.bias"], eps)
        m = widths[i]
        f = gelu_erf(h @ W[p + "intermediate.dense.weight"][:m].T + W[p + "intermediate.dense.bias"][:m])
        x = x + f @ W[p + "output.dense.weight"][:, :m].T + W[p + "output.dense.bias"]
    x = layernorm(x, W["vit.layernorm.weight"], W["vit.layernorm.bias"], eps)
    pooled = x[:, 0]
    return {"logits": pooled @ W["classifier.weight"].T + W["classifier.bias"], "pooled": pooled}


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "fixtures", "hf")
    worst = 0.0
    for arch, fn in (("llama", llama), ("gpt2", gpt2), ("vit", vit)):
        d = os.path.join(root, arch)
        cfg = json.load(open(os.path.join(d, "config.json")))
        W = {k: v.astype(np.float64) for k, v in load_file(os.path.join(d, "model.safetensors")).items()}
        R = load_file(os.path.join(d, "reference.safetensors"))
        with safe_open(os.path.join(d, "reference.safetensors"), "np") as f:
            meta = f.metadata()
        inp = R["pixel_values"].astype(np.float64) if arch == "vit" else R["input_ids"]
        L = cfg.get("num_hidden_layers", cfg.get("n_layer"))
        cases = [(f"m{w}", [int(w)] * L) for w in meta["widths"].split(",")]
        cases.append(("mix", [int(w) for w in meta["mix_widths"].split(",")]))
        for tag, widths in cases:
            out = fn(cfg, W, inp, widths)
            for k, v in out.items():
                ref = R[f"{k}.{tag}"].astype(np.float64)
                err = np.abs(v - ref).max() / max(1.0, np.abs(ref).max())
                worst = max(worst, err)
                print(f"{arch:5s} {k}.{tag:5s} max rel err {err:.2e}")
                assert err < 1e-4, (arch, k, tag, err)
    print(f"OK, worst {worst:.2e}")


if __name__ == "__main__":
    main()
