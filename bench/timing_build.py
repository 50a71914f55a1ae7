"""Random-weight models on a device, timed calls, and the attention backend probe, for
bench.timing_model.

`build`: a transformer is made with its parameters on the meta device (its buffers, the
RoPE tables, computed for real), cast to the target dtype there, then materialised on the
target device (no full fp32 copy anywhere) and filled with N(0, 0.02) for matrices, 0 for
biases and 1 for other vectors (norm scales); modules the class lists in
`_keep_in_fp32_modules` stay fp32, as from_pretrained keeps them. A VAE (< 0.5 B
parameters) is made on the CPU with the class's own random init, then moved.
"""

from __future__ import annotations

import statistics
import time

# Exact attention (no quantisation, no sparsity) that diffusers dispatches to without a
# download (the *_hub backends fetch kernels from the Hub; sage is 8-bit).
EXACT_BACKENDS = ["native", "_native_cudnn", "_native_flash", "_native_efficient", "flash"]
EXACT_BACKENDS += ["_flash_3"]


def sync(device) -> None:
    import torch

    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device, warmup: int, repeats: int) -> dict:
    """Median of `repeats` calls after `warmup` calls; the first call's time is kept."""
    first_s, times, out = None, [], None
    for i in range(warmup + repeats):
        sync(device)
        start = time.perf_counter()
        out = fn()
        sync(device)
        took = time.perf_counter() - start
        first_s = took if i == 0 else first_s
        if i >= warmup:
            times.append(took)
    return dict(seconds=statistics.median(times), seconds_all=times, first_call_s=first_s, out=out)


def build(spec, config: dict, device, dtype):
    """The model of `spec` on `device` in `dtype`, random weights (see the docstring)."""
    import diffusers
    import torch
    from accelerate import init_empty_weights

    cls = getattr(diffusers, spec.cls)
    torch.manual_seed(0)
    if spec.kind == "vae":
        model = cls(**config)
    else:
        with init_empty_weights(include_buffers=False):
            model = cls(**config)
    # nn.Module.to: ModelMixin.to only warns about the fp32 modules that are handled here.
    torch.nn.Module.to(model, dtype=dtype)
    keep_fp32 = getattr(cls, "_keep_in_fp32_modules", None) or []
    for name, module in model.named_modules():
        if any(part in keep_fp32 for part in name.split(".")):
            module.float()
    if spec.kind == "vae":
        return model.to(device).eval()
    buffers = {name: b.clone() for name, b in model.named_buffers()}
    model.to_empty(device=device)
    gen = torch.Generator(device).manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim >= 2:
                p.normal_(0.0, 0.02, generator=gen)
            else:
                p.fill_(0.0 if name.endswith("bias") else 1.0)
        for name, b in model.named_buffers():
            b.copy_(buffers[name])
    return model.eval()


def probe_attention(shape: dict, device, dtype, repeats: int) -> dict:
    """Time each exact backend on q, k, v of `shape` (batch, tokens, heads, head_dim), as
    the transformers call diffusers' dispatch_attention_fn; fastest first."""
    import torch
    from diffusers.models import attention_dispatch as ad

    gen = torch.Generator(device).manual_seed(0)
    size = (shape["batch"], shape["tokens"], shape["heads"], shape["head_dim"])
    q, k, v = (torch.randn(size, generator=gen, device=device, dtype=dtype) for _ in range(3))
    rows, reference = [], None
    for name in EXACT_BACKENDS:
        backend = ad.AttentionBackendName(name)
        try:
            ad._check_attention_backend_requirements(backend)
            with torch.inference_mode():
                run = timed(
                    lambda b=backend: ad.dispatch_attention_fn(q, k, v, backend=b),
                    device,
                    1,
                    repeats,
                )
        except Exception as exc:  # a missing package, an unsupported GPU or dtype
            rows.append(dict(backend=name, ok=False, error=f"{type(exc).__name__}: {exc}"[:300]))
            continue
        out = run.pop("out").float()
        reference = out if reference is None else reference  # the first that ran: native
        rows.append(dict(backend=name, ok=True, **run))
        rows[-1]["max_abs_diff_vs_first"] = (out - reference).abs().max().item()
    usable = sorted((r for r in rows if r["ok"]), key=lambda r: r["seconds"])
    return dict(shape=shape, backends=rows, fastest_exact=usable[0]["backend"] if usable else None)
