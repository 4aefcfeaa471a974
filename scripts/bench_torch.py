#!/usr/bin/env python3
"""PyTorch / Hugging Face CPU baseline numbers for the matformer benchmarks.

Prints ONE JSON object to stdout (progress goes to stderr):
  gemm       GFLOP/s of the FFN GEMM  y[n,m] = x[n,768] @ W[m,768]^T  (d_model 768,
             d_ff 3072, i.e. a ~100M-parameter model) for n in {1, 64, 512} tokens
             and FFN width m in {384, 768, 1536, 3072}; float32, plus float16 and
             bfloat16 (both operands in that dtype) with a note on how torch runs them.
             flops = 2*n*m*768.
  hf_decode  Hugging Face transformers eager GPT-2 (n_embd 768, 12 layers, 12 heads,
             n_inner 3072, vocab 50257, n_positions 1024; random init, float32) greedy
             decode with KV cache after a 16-token prompt: ms per decoded token, for
             the full model and for the same weights with every FFN sliced to the
             first d_ff/8 = 384 neurons (c_fc columns/bias, c_proj rows; n_inner 384).
             Measured with a manual loop over past_key_values (no sampling overhead)
             and, outside --quick, also through model.generate(min/max_new_tokens=N).

Flags:
  --threads N     torch.set_num_threads(N); default: the number of cores (os.cpu_count())
  --quick         fewer repeats, 8 decoded tokens, no generate() run (for CI/harness use)
  --skip-decode   only the GEMM part
  --skip-gemm     only the decode part
  --repeats R     override the number of timed repeats (median is reported)

Usage: .venv-ref/bin/python scripts/bench_torch.py [--threads 2] [--quick] > bench.json
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time

import torch

D_MODEL = 768
D_FF = 3072
NS = [1, 64, 512]
MS = [384, 768, 1536, 3072]


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def cpu_model():
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def time_fn(fn, repeats, min_time=0.05):
    """Median seconds per call. Each repeat runs enough calls to take >= min_time."""
    for _ in range(3):
        fn()
    t0 = time.perf_counter()
    fn()
    one = max(time.perf_counter() - t0, 1e-7)
    iters = max(1, int(min_time / one))
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(iters):
            fn()
        samples.append((time.perf_counter() - t0) / iters)
    return statistics.median(samples), iters


@torch.inference_mode()
def bench_gemm(dtype, repeats):
    g = torch.Generator().manual_seed(0)
    out = []
    for n in NS:
        for m in MS:
            x = torch.randn(n, D_MODEL, generator=g).to(dtype)
            w = torch.randn(m, D_MODEL, generator=g).to(dtype) * 0.02
            sec, iters = time_fn(lambda: torch.nn.functional.linear(x, w), repeats)
            flops = 2.0 * n * m * D_MODEL
            out.append({"n": n, "m": m, "ms": round(sec * 1e3, 4),
                        "gflops": round(flops / sec / 1e9, 2), "iters_per_repeat": iters})
            log(f"gemm {str(dtype):15s} n={n:4d} m={m:5d}: {flops / sec / 1e9:8.1f} GFLOP/s")
    return out


def slice_gpt2_ffn(model, m):
    from torch import nn
    for layer in model.transformer.h:
        c_fc, c_proj = layer.mlp.c_fc, layer.mlp.c_proj  # Conv1D weights are [in, out]
        c_fc.weight = nn.Parameter(c_fc.weight.data[:, :m].clone())
        c_fc.bias = nn.Parameter(c_fc.bias.data[:m].clone())
        c_fc.nf = m
        c_proj.weight = nn.Parameter(c_proj.weight.data[:m, :].clone())
        c_proj.nx = m
    model.config.n_inner = m
    return model


def _cache_io(model):
    """transformers >= 5.2x names the KV-cache argument/output `cache`; older ones
    `past_key_values`. Returns (kwarg name, getter)."""
    import inspect
    params = inspect.signature(model.forward).parameters
    name = "cache" if "cache" in params else "past_key_values"
    return name, (lambda out: getattr(out, name))


@torch.inference_mode()
def decode_manual(model, prompt, new_tokens):
    """Returns (prefill seconds, decode seconds for new_tokens tokens)."""
    kw, get = _cache_io(model)
    t0 = time.perf_counter()
    out = model(input_ids=prompt, use_cache=True)
    past = get(out)
    nxt = out.logits[:, -1].argmax(-1, keepdim=True)
    t1 = time.perf_counter()
    for _ in range(new_tokens):
        out = model(input_ids=nxt, use_cache=True, **{kw: past})
        past = get(out)
        nxt = out.logits[:, -1].argmax(-1, keepdim=True)
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1


@torch.inference_mode()
def decode_generate(model, prompt, new_tokens):
    t0 = time.perf_counter()
    model.generate(input_ids=prompt, attention_mask=torch.ones_like(prompt), do_sample=False,
                   max_new_tokens=new_tokens, min_new_tokens=new_tokens, use_cache=True,
                   pad_token_id=0)
    return time.perf_counter() - t0


def bench_decode(repeats, new_tokens, with_generate):
    import transformers
    from transformers import GPT2Config, GPT2LMHeadModel

    cfg = GPT2Config(n_embd=D_MODEL, n_layer=12, n_head=12, n_inner=D_FF, vocab_size=50257,
                     n_positions=1024, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                     attn_implementation="eager")
    torch.manual_seed(0)
    model = GPT2LMHeadModel(cfg).eval().to(torch.float32)
    prompt = torch.randint(0, cfg.vocab_size, (1, 16), generator=torch.Generator().manual_seed(1))
    res = {"transformers_version": transformers.__version__, "prompt_tokens": 16,
           "new_tokens": new_tokens, "batch": 1, "dtype": "float32",
           "attn_implementation": model.config._attn_implementation, "models": []}
    for label, m in (("full", D_FF), ("ffn_d_ff/8", D_FF // 8)):
        if m != D_FF:
            model = slice_gpt2_ffn(model, m)
        n_params = sum(p.numel() for p in model.parameters())
        decode_manual(model, prompt, 4)  # warm-up
        pre, dec = [], []
        for _ in range(repeats):
            p, d = decode_manual(model, prompt, new_tokens)
            pre.append(p)
            dec.append(d)
        entry = {"label": label, "n_inner": m, "params": n_params,
                 "params_without_lm_head_and_embeddings":
                     n_params - model.transformer.wte.weight.numel() - model.transformer.wpe.weight.numel(),
                 "prefill_ms": round(statistics.median(pre) * 1e3, 2),
                 "ms_per_token": round(statistics.median(dec) / new_tokens * 1e3, 3),
                 "tokens_per_s": round(new_tokens / statistics.median(dec), 2)}
        if with_generate:
            decode_generate(model, prompt, 4)
            gen = [decode_generate(model, prompt, new_tokens) for _ in range(repeats)]
            entry["generate_total_ms"] = round(statistics.median(gen) * 1e3, 2)
            entry["generate_ms_per_token_incl_prefill"] = round(statistics.median(gen) / new_tokens * 1e3, 3)
        log(f"decode {label}: {entry['ms_per_token']} ms/token (prefill {entry['prefill_ms']} ms)")
        res["models"].append(entry)
    full, small = res["models"]
    res["speedup_ffn_d_ff/8_vs_full"] = round(full["ms_per_token"] / small["ms_per_token"], 3)
    res["note"] = ("lm_head (50257x768, tied to wte) and attention are not sliced, so the "
                   "end-to-end speed-up is far below the FFN's 8x")
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--skip-decode", action="store_true")
    ap.add_argument("--skip-gemm", action="store_true")
    ap.add_argument("--repeats", type=int, default=None)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    repeats = args.repeats or (3 if args.quick else 7)
    result = {
        "tool": "scripts/bench_torch.py",
        "torch_version": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu": cpu_model(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cores": os.cpu_count(),
        "quick": args.quick,
        "repeats": repeats,
        "statistic": "median",
    }
    if not args.skip_gemm:
        gemm = {"shape": "y[n,m] = x[n,768] @ W[m,768]^T", "flops": "2*n*m*768",
                "float32": bench_gemm(torch.float32, repeats)}
        for dt, name in ((torch.float16, "float16"), (torch.bfloat16, "bfloat16")):
            try:
                gemm[name] = bench_gemm(dt, repeats)
            except (RuntimeError, NotImplementedError) as e:
                gemm[name] = None
                gemm[name + "_note"] = f"skipped: {e}"
        cap = torch.backends.cpu.get_cpu_capability()
        gemm["half_note"] = (
            "both operands in the named dtype, output in that dtype. torch CPU runs float16 "
            "GEMM natively only with AVX512-FP16/AMX-FP16; elsewhere it is a slow fallback. "
            f"bfloat16 uses oneDNN (fast with AVX512-BF16/AMX). cpu_capability={cap}")
        result["gemm"] = gemm
    if not args.skip_decode:
        new_tokens = 8 if args.quick else 32
        result["hf_decode"] = bench_decode(1 if args.quick else max(3, repeats // 2),
                                           new_tokens, with_generate=not args.quick)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
