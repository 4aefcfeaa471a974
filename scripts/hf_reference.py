#!/usr/bin/env python3
"""Generate tiny Hugging Face reference fixtures for the Rust importer tests.

For each architecture (llama, gpt2, vit) this builds a tiny randomly initialised
HF model (fixed seed, float32, eager attention, eval mode) and writes, under
tests/fixtures/hf/<arch>/:

  config.json            exactly as `model.save_pretrained(dir)` writes it
  model.safetensors      exactly as `model.save_pretrained(dir)` writes it
  reference.safetensors  inputs and expected outputs:
      input_ids      int64 [batch, seq]          (llama, gpt2)
      pixel_values   float32 [batch, C, H, W]    (vit)
      logits.m<m>    float32 logits of the model whose every FFN is sliced to
                     the first m hidden neurons, for m in the granularity list
                     (m = d_ff is the unmodified model)
      pooled.m<m>    (vit only) final-layernorm output at the CLS token
      logits.mix     Mix'n'Match: per-layer widths from metadata `mix_widths`
      pooled.mix     (vit only)
    metadata (all strings): arch, widths, mix_widths, d_ff, seed,
      transformers_version, torch_version, format

It also writes the tokenizer fixture under tests/fixtures/tokenizer/ (a tiny
GPT-2-style byte-level BPE trained on Shakespeare text, plus expected ids).

Usage (from the repository root):
    .venv-ref/bin/python scripts/hf_reference.py [--out tests/fixtures] \
        [--shakespeare /work/shared/data/shakespeare] [--only llama,gpt2,vit,tokenizer]
"""

import argparse
import copy
import glob
import json
import os
import sys

import numpy as np
import torch
import transformers
from safetensors.torch import load_file
from torch import nn

SEED = 1234
STD = 0.2
BATCH = 2
SEQ = 10


# ---------------------------------------------------------------- safetensors I/O

_DTYPES = {torch.float32: "F32", torch.int64: "I64", torch.float16: "F16", torch.bfloat16: "BF16"}


def save_safetensors_sorted(tensors, path, metadata):
    """Write a safetensors file with tensors and metadata in sorted order, so the
    bytes are reproducible (safetensors' own writer orders metadata randomly)."""
    header = {"__metadata__": dict(sorted(metadata.items()))}
    blobs, off = [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        b = t.numpy().tobytes()  # little-endian on x86/arm
        header[name] = {"dtype": _DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as fh:
        fh.write(len(h).to_bytes(8, "little"))
        fh.write(h)
        for b in blobs:
            fh.write(b)
    back = load_file(path)  # round-trip check with the official reader
    assert sorted(back) == sorted(tensors)
    for k in back:
        assert torch.equal(back[k], tensors[k].cpu()), k


# --------------------------------------------------------------------------- init

def is_norm(mod):
    name = type(mod).__name__
    return isinstance(mod, nn.LayerNorm) or name.endswith("RMSNorm") or name.endswith("LayerNorm")


@torch.no_grad()
def big_init(model, seed):
    """Re-initialise every parameter: N(0, STD) for weights and biases; norm
    weights 1 + N(0, STD), norm biases N(0, STD). Deterministic in `seed`."""
    g = torch.Generator().manual_seed(seed)
    done = set()
    for _, mod in model.named_modules():
        if is_norm(mod):
            for pname, p in mod.named_parameters(recurse=False):
                if id(p) in done:
                    continue
                done.add(id(p))
                r = torch.randn(p.shape, generator=g, dtype=torch.float32)
                if pname == "weight":
                    p.copy_(1.0 + STD * r)
                else:
                    p.copy_(STD * r)
    for _, p in model.named_parameters():  # named_parameters dedups tied params
        if id(p) in done:
            continue
        done.add(id(p))
        p.copy_(STD * torch.randn(p.shape, generator=g, dtype=torch.float32))


# ------------------------------------------------------------------------ slicing

def slice_linear_out(lin: nn.Linear, m: int):
    """Keep output neurons [:m] of an nn.Linear (weight [out, in])."""
    lin.weight = nn.Parameter(lin.weight.data[:m, :].clone())
    if lin.bias is not None:
        lin.bias = nn.Parameter(lin.bias.data[:m].clone())
    lin.out_features = m


def slice_linear_in(lin: nn.Linear, m: int):
    """Keep input neurons [:m] of an nn.Linear (weight [out, in])."""
    lin.weight = nn.Parameter(lin.weight.data[:, :m].clone())
    lin.in_features = m


def slice_model(model, arch: str, widths_per_layer):
    """Return a deep copy of `model` whose layer-i FFN uses the first widths[i] neurons."""
    model = copy.deepcopy(model)
    if arch == "llama":
        layers = model.model.layers
        for layer, m in zip(layers, widths_per_layer, strict=True):
            slice_linear_out(layer.mlp.gate_proj, m)
            slice_linear_out(layer.mlp.up_proj, m)
            slice_linear_in(layer.mlp.down_proj, m)
            if hasattr(layer.mlp, "intermediate_size"):
                layer.mlp.intermediate_size = m
    elif arch == "gpt2":
        layers = model.transformer.h
        for layer, m in zip(layers, widths_per_layer, strict=True):
            c_fc, c_proj = layer.mlp.c_fc, layer.mlp.c_proj  # Conv1D: weight [in, out]
            c_fc.weight = nn.Parameter(c_fc.weight.data[:, :m].clone())
            c_fc.bias = nn.Parameter(c_fc.bias.data[:m].clone())
            c_fc.nf = m
            c_proj.weight = nn.Parameter(c_proj.weight.data[:m, :].clone())
            c_proj.nx = m
    elif arch == "vit":
        if hasattr(model.vit, "encoder"):  # transformers 4.x module layout
            for layer, m in zip(model.vit.encoder.layer, widths_per_layer, strict=True):
                slice_linear_out(layer.intermediate.dense, m)
                slice_linear_in(layer.output.dense, m)
        else:  # transformers 5.x in-memory layout (vit.layers.i.mlp.fc1/fc2)
            for layer, m in zip(model.vit.layers, widths_per_layer, strict=True):
                slice_linear_out(layer.mlp.fc1, m)
                slice_linear_in(layer.mlp.fc2, m)
    else:
        raise ValueError(arch)
    return model.eval()


# ------------------------------------------------------------------------ models

def build(arch):
    torch.manual_seed(SEED)
    common = dict(attn_implementation="eager", dtype=torch.float32)
    if arch == "llama":
        cfg = transformers.LlamaConfig(
            vocab_size=256, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, intermediate_size=128, max_position_embeddings=64,
            rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=False,
            attention_bias=False, mlp_bias=False, hidden_act="silu", attention_dropout=0.0,
            bos_token_id=None, eos_token_id=None, pad_token_id=None, **common,
        )
        model = transformers.LlamaForCausalLM(cfg)
        d_ff = cfg.intermediate_size
    elif arch == "gpt2":
        cfg = transformers.GPT2Config(
            vocab_size=256, n_embd=64, n_layer=2, n_head=4, n_inner=128, n_positions=64,
            activation_function="gelu_new", resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
            layer_norm_epsilon=1e-5, tie_word_embeddings=True,
            bos_token_id=None, eos_token_id=None, **common,
        )
        model = transformers.GPT2LMHeadModel(cfg)
        d_ff = cfg.n_inner
    elif arch == "vit":
        cfg = transformers.ViTConfig(
            image_size=16, patch_size=4, num_channels=3, hidden_size=64, num_hidden_layers=2,
            num_attention_heads=4, intermediate_size=128, num_labels=10, layer_norm_eps=1e-12,
            hidden_act="gelu", hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
            qkv_bias=True, **common,
        )
        model = transformers.ViTForImageClassification(cfg)
        d_ff = cfg.intermediate_size
    else:
        raise ValueError(arch)
    big_init(model, SEED)
    if arch == "gpt2":
        assert model.lm_head.weight.data_ptr() == model.transformer.wte.weight.data_ptr(), "tied"
    model = model.eval().to(torch.float32)
    impl = getattr(model.config, "_attn_implementation", None)
    assert impl == "eager", f"attention implementation is {impl!r}, want eager"
    return model, d_ff


def make_input(arch, model):
    g = torch.Generator().manual_seed(SEED + 1)
    if arch == "vit":
        c = model.config
        x = torch.randn((BATCH, c.num_channels, c.image_size, c.image_size), generator=g)
        return {"pixel_values": x.to(torch.float32)}
    ids = torch.randint(0, model.config.vocab_size, (BATCH, SEQ), generator=g, dtype=torch.int64)
    return {"input_ids": ids}


@torch.no_grad()
def run(arch, model, inputs):
    out = {}
    if arch == "vit":
        pv = inputs["pixel_values"]
        out["logits"] = model(pixel_values=pv).logits
        out["pooled"] = model.vit(pixel_values=pv).last_hidden_state[:, 0]
    else:
        out["logits"] = model(input_ids=inputs["input_ids"], use_cache=False).logits
    return {k: v.detach().to(torch.float32).contiguous() for k, v in out.items()}


@torch.no_grad()
def cross_check(arch, model, m, inputs, got):
    """Independent check of slicing: build a fresh HF model with d_ff=m from the
    config and load the sliced state dict by name; outputs must match."""
    cfg = copy.deepcopy(model.config)
    if arch == "gpt2":
        cfg.n_inner = m
    else:
        cfg.intermediate_size = m
    fresh = type(model)(cfg).eval()
    sliced = slice_model(model, arch, [m] * cfg.num_hidden_layers)
    sd = sliced.state_dict()
    missing, unexpected = fresh.load_state_dict(sd, strict=False)
    missing = [k for k in missing if k != "lm_head.weight" or arch != "gpt2"]
    assert not missing and not unexpected, (missing, unexpected)
    if arch == "gpt2":
        fresh.tie_weights()
    ref = run(arch, fresh, inputs)
    for k in ref:
        err = (ref[k] - got[k]).abs().max().item()
        assert err < 1e-5, f"{arch} m={m} {k}: cross-check max err {err}"


def make_fixture(arch, out_root):
    model, d_ff = build(arch)
    n_layers = model.config.num_hidden_layers
    widths = [d_ff // 8, d_ff // 4, d_ff // 2, d_ff]
    mix = [widths[0]] + [d_ff] * (n_layers - 1)
    d = os.path.join(out_root, "hf", arch)
    os.makedirs(d, exist_ok=True)
    for f in glob.glob(os.path.join(d, "*")):
        os.remove(f)
    try:
        model.save_pretrained(d, safe_serialization=True)
    except TypeError:
        model.save_pretrained(d)
    for f in os.listdir(d):  # keep only config.json + model.safetensors
        if f not in ("config.json", "model.safetensors"):
            os.remove(os.path.join(d, f))

    # Reload from disk and check it reproduces the in-memory model.
    inputs = make_input(arch, model)
    full = run(arch, model, inputs)
    reloaded = type(model).from_pretrained(d, attn_implementation="eager", dtype=torch.float32).eval()
    re = run(arch, reloaded, inputs)
    for k in full:
        assert torch.equal(full[k], re[k]), f"{arch}: reload mismatch on {k}"

    tensors = {k: v.contiguous() for k, v in inputs.items()}
    for m in widths:
        sliced = slice_model(model, arch, [m] * n_layers)
        o = run(arch, sliced, inputs)
        if m == d_ff:
            for k in o:
                assert torch.equal(o[k], full[k])
        else:
            cross_check(arch, model, m, inputs, o)
        for k, v in o.items():
            tensors[f"{k}.m{m}"] = v
    o = run(arch, slice_model(model, arch, mix), inputs)
    for k, v in o.items():
        tensors[f"{k}.mix"] = v
    # Sanity: outputs are finite and the widths actually change the result.
    for k, v in tensors.items():
        if v.is_floating_point():
            assert torch.isfinite(v).all(), k
    a, b = tensors[f"logits.m{widths[0]}"], tensors[f"logits.m{d_ff}"]
    rel = ((a - b).norm() / b.norm()).item()
    assert rel > 1e-2, f"{arch}: smallest width barely differs from full ({rel})"

    meta = {
        "format": "pt",
        "arch": arch,
        "widths": ",".join(str(w) for w in widths),
        "mix_widths": ",".join(str(w) for w in mix),
        "d_ff": str(d_ff),
        "seed": str(SEED),
        "init_std": str(STD),
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__,
    }
    save_safetensors_sorted(tensors, os.path.join(d, "reference.safetensors"), meta)
    print(f"[{arch}] transformers {transformers.__version__}, torch {torch.__version__}; "
          f"widths {widths}, mix {mix}; rel diff m{widths[0]} vs full: {rel:.3f}")
    for f in sorted(os.listdir(d)):
        print(f"    {f}: {os.path.getsize(os.path.join(d, f))} bytes")


# --------------------------------------------------------------------- tokenizer

TOKENIZER_SAMPLES = [
    "Hello, world!",
    "To be, or not to be: that is the question.",
    "First line\nSecond line\n\n  indented\ttab",
    "café ☃ naïve — “quoted” 日本",
    "O Romeo, Romeo! wherefore art thou Romeo? 12345 don't",
    "",
]


def make_tokenizer(out_root, shakespeare_dir):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    files = sorted(glob.glob(os.path.join(shakespeare_dir, "*.txt")))
    files = [f for f in files if "COPYING" not in os.path.basename(f)]
    assert files, f"no .txt files in {shakespeare_dir}"
    src = files[0]
    with open(src, encoding="utf-8", errors="replace") as fh:
        text = fh.read()
    # Skip the Gutenberg header if present, take ~8 KB of the play.
    start = text.find("*** START")
    if start >= 0:
        start = text.find("\n", start) + 1
    else:
        start = 0
    chunk = text[start:start + 8192]

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=300, min_frequency=2, show_progress=False,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator([chunk], trainer=trainer)

    d = os.path.join(out_root, "tokenizer")
    os.makedirs(d, exist_ok=True)
    tok.save(os.path.join(d, "tokenizer.json"))
    tok2 = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
    expected = []
    for s in TOKENIZER_SAMPLES:
        enc = tok2.encode(s, add_special_tokens=False)
        assert tok2.decode(enc.ids) == s, (s, tok2.decode(enc.ids))
        expected.append({"text": s, "ids": enc.ids, "tokens": enc.tokens})
    with open(os.path.join(d, "expected.json"), "w", encoding="utf-8") as fh:
        json.dump(expected, fh, ensure_ascii=False, indent=1)
        fh.write("\n")
    print(f"[tokenizer] trained on {os.path.basename(src)}; vocab {tok2.get_vocab_size()}")
    for f in sorted(os.listdir(d)):
        print(f"    {f}: {os.path.getsize(os.path.join(d, f))} bytes")


def main():
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(repo, "tests", "fixtures"))
    ap.add_argument("--shakespeare", default="/work/shared/data/shakespeare")
    ap.add_argument("--only", default="llama,gpt2,vit,tokenizer")
    args = ap.parse_args()
    torch.set_num_threads(1)  # deterministic reductions
    for what in args.only.split(","):
        if what == "tokenizer":
            make_tokenizer(args.out, args.shakespeare)
        else:
            make_fixture(what, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
