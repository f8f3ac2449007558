#!/usr/bin/env python3
"""HuggingFace transformers peer for esm2-serve's device benchmark.

What is measured
----------------
The wall-clock time HuggingFace ``transformers.EsmModel`` (PyTorch, SDPA
attention where the installed version accepts it) needs to embed a workload
written by our Node side: the same token ids (our tokenizer's ids are HF
EsmTokenizer's ids) in the same batches our engine ran (greedy token budget).

Why it matches our engine's work
--------------------------------
Per batch, inside the timed loop, this script does what a server does and what
our engine does for a mean-of-last-layer embedding request:

* builds the right-padded ``input_ids`` (pad_token_id) and ``attention_mask``
  (1 for real tokens) on the host as int64 tensors and moves them to the device;
* runs the encoder (no pooler: ``add_pooling_layer=False``; no LM head);
* averages ``last_hidden_state`` over each row's residue tokens, positions
  1 .. len-2 (cls and eos excluded, padding excluded), on the device with
  float32 accumulation, and copies the means to the host (``.float().cpu()``).

Per dtype: one untimed warm-up pass over all batches, then ``--repeats`` timed
passes (``torch.cuda.synchronize()`` before each clock read,
``time.perf_counter``). residues/s = workload residues / median pass seconds.
The model is freed between dtypes.

Output (``--out``)::

    {"peer": "hf-transformers", "model": ..., "torch": ..., "transformers": ...,
     "device": <cuda device name or "cpu">, "attention": "sdpa" | ...,
     "rows": [{"dtype": "fp16", "passes_s": [...], "median_s": x,
               "residues_per_s": y}, ...],
     "skipped": null, ...}

A dtype whose run raises gives ``{"dtype": d, "error": "..."}`` and the others
still run. Without torch/transformers, or with ``--device cuda`` and no CUDA,
it writes ``{"peer": "hf-transformers", "skipped": "<reason>", "rows": []}``
and exits 0. An unreadable/invalid workload file also gives a "skipped" JSON naming
the problem, exit 0 (the driver replaces the report of a failed run).

Only the standard library is imported at module level.
"""

import argparse
import gc
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peer_common import load_workload, log, positive_int, short_error, write_json  # noqa: E402

PEER = "hf-transformers"

DTYPE_ALIASES = {
    "fp16": "fp16", "float16": "fp16", "half": "fp16",
    "bf16": "bf16", "bfloat16": "bf16",
    "fp32": "fp32", "float32": "fp32", "float": "fp32",
}


def pad_batch(tokens, batch, pad):
    """Host-side padded ids, attention mask and lengths for one batch (plain lists)."""
    rows = [tokens[i] for i in batch]
    width = max(len(r) for r in rows)
    ids = [r + [pad] * (width - len(r)) for r in rows]
    mask = [[1] * len(r) + [0] * (width - len(r)) for r in rows]
    lens = [len(r) for r in rows]
    return ids, mask, lens


def parse_dtypes(text):
    out = []
    for part in text.split(","):
        part = part.strip().lower()
        if not part:
            continue
        if part not in DTYPE_ALIASES:
            raise argparse.ArgumentTypeError("unknown dtype %r (use fp16, bf16, fp32)" % part)
        out.append(DTYPE_ALIASES[part])
    if not out:
        raise argparse.ArgumentTypeError("no dtypes given")
    return out


def version_tuple(v):
    parts = []
    for p in v.split(".")[:3]:
        digits = "".join(ch for ch in p if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def load_model(transformers, torch, model_dir, torch_dtype, device, notes):
    """EsmModel with SDPA attention if accepted; returns (model, attention)."""
    # transformers >= 4.56 names the argument `dtype`; older ones `torch_dtype`.
    dtype_kw = "dtype" if version_tuple(transformers.__version__) >= (4, 56) else "torch_dtype"
    kwargs = {dtype_kw: torch_dtype, "add_pooling_layer": False, "local_files_only": True}
    try:
        model = transformers.EsmModel.from_pretrained(model_dir, attn_implementation="sdpa", **kwargs)
    except (ValueError, ImportError, TypeError, NotImplementedError) as e:
        msg = str(e)
        if "sdpa" not in msg.lower() and "attn_implementation" not in msg and "attention" not in msg.lower():
            raise
        note = "attn_implementation='sdpa' refused (%s: %s); using the default attention" % (
            type(e).__name__, msg.splitlines()[0] if msg else "")
        if note not in notes:
            notes.append(note)
        model = transformers.EsmModel.from_pretrained(model_dir, **kwargs)
    attention = getattr(model.config, "_attn_implementation", None) or "default"
    model = model.eval().to(device)
    return model, attention


def run_pass(torch, model, tokens, batches, pad, device, sync, collect=None):
    """One pass over all batches; returns seconds. Means are fetched to the host per batch.

    ``collect`` (a dict, untimed check runs only) receives {sequence index: mean tensor}."""
    t0 = time.perf_counter()
    for batch in batches:
        ids, mask, lens = pad_batch(tokens, batch, pad)
        ids_t = torch.tensor(ids, dtype=torch.int64).to(device)
        mask_t = torch.tensor(mask, dtype=torch.int64).to(device)
        lens_t = torch.tensor(lens, dtype=torch.int64).to(device)
        h = model(input_ids=ids_t, attention_mask=mask_t).last_hidden_state  # [B, T, H]
        pos = torch.arange(h.shape[1], device=h.device)
        keep = (pos[None, :] >= 1) & (pos[None, :] < (lens_t - 1)[:, None])  # residues 1..len-2
        sums = (h * keep[:, :, None].to(h.dtype)).sum(dim=1, dtype=torch.float32)
        counts = (lens_t - 2).clamp(min=1).to(torch.float32)[:, None]
        means = (sums / counts).float().cpu()
        if collect is not None:
            for j, i in enumerate(batch):
                collect[i] = means[j]
        del h, means
    if sync:
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def check_summary(got, i):
    """The first batch's residue means, summarised so runs can be compared with our engine's."""
    return {"sequence": i, "mean_head": [round(float(x), 6) for x in got[i][:4].tolist()],
            "mean_abs_sum": round(float(sum(float(v.abs().sum()) for v in got.values())), 6)}


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="Time HuggingFace transformers EsmModel on an esm2-serve workload (the peer). "
                    "Per batch: host int64 ids/mask -> device, encoder, residue-mean of last_hidden_state "
                    "on the device, means copied to the host. Writes a JSON report; exits 0 with a "
                    "'skipped' reason when torch/transformers/CUDA are unavailable.")
    ap.add_argument("--model", required=True, help="HF model directory (config.json + weights), loaded offline")
    ap.add_argument("--workload", required=True, help="workload JSON written by the Node side (tokens, batches, residues, pad_token_id)")
    ap.add_argument("--dtypes", type=parse_dtypes, default=parse_dtypes("fp16,bf16"),
                    help="comma-separated dtypes: fp16, bf16, fp32 (default: fp16,bf16)")
    ap.add_argument("--repeats", type=positive_int, default=3, help="timed passes per dtype after one warm-up (default: 3)")
    ap.add_argument("--device", default="cuda", help="torch device: cuda, cuda:N or cpu (default: cuda)")
    ap.add_argument("--out", required=True, help="where to write the JSON report")
    args = ap.parse_args(argv)

    try:
        model_name, residues, pad, tokens, batches, wl_notes = load_workload(args.workload)
    except (OSError, ValueError) as e:
        reason = "workload %s unreadable or invalid: %s" % (args.workload, e)
        write_json(args.out, {"peer": PEER, "skipped": reason, "rows": []})
        log("%s: %s" % (PEER, reason))
        return 0

    def skip(reason):
        write_json(args.out, {"peer": PEER, "skipped": reason, "rows": []})
        log("%s: skipped: %s" % (PEER, reason))
        return 0

    try:
        import torch
    except Exception as e:  # ImportError, or a broken install
        return skip("torch not importable (%s: %s)" % (type(e).__name__, e))
    try:
        import transformers
    except Exception as e:
        return skip("transformers not importable (%s: %s)" % (type(e).__name__, e))

    is_cuda = args.device.startswith("cuda")
    if is_cuda and not torch.cuda.is_available():
        return skip("--device %s but torch %s reports CUDA unavailable" % (args.device, torch.__version__))

    try:
        device = torch.device(args.device)
        device_name = torch.cuda.get_device_name(device) if is_cuda else "cpu"
    except Exception as e:
        return skip("device %s unusable (%s: %s)" % (args.device, type(e).__name__, e))

    torch_dtypes = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}
    notes = list(wl_notes)
    rows = []
    attention = None
    report = {
        "peer": PEER, "model": model_name, "torch": torch.__version__,
        "transformers": transformers.__version__, "device": device_name,
        "attention": None, "rows": rows, "skipped": None,
        "model_dir": os.path.abspath(args.model), "residues": residues,
        "sequences": sum(len(b) for b in batches), "batches": len(batches),
        "repeats": args.repeats, "notes": notes,
    }
    log("%s: torch %s, transformers %s, device %s, %d batches, %s residues"
        % (PEER, torch.__version__, transformers.__version__, device_name, len(batches), residues))

    for d in args.dtypes:
        model = None
        try:
            model, att = load_model(transformers, torch, args.model, torch_dtypes[d], device, notes)
            if attention is None:
                attention = att
            elif att != attention:
                notes.append("%s ran with attention %s (first dtype: %s)" % (d, att, attention))
            with torch.inference_mode():
                run_pass(torch, model, tokens, batches, pad, device, is_cuda)  # warm-up, untimed
                passes = []
                for _ in range(args.repeats):
                    if is_cuda:
                        torch.cuda.synchronize()
                    passes.append(run_pass(torch, model, tokens, batches, pad, device, is_cuda))
                got = {}
                run_pass(torch, model, tokens, batches[:1], pad, device, is_cuda, collect=got)  # untimed check
            med = statistics.median(passes)
            row = {"dtype": d, "passes_s": [round(p, 6) for p in passes], "median_s": round(med, 6),
                   "residues_per_s": round(residues / med, 3) if med > 0 else None, "attention": att,
                   "check": check_summary(got, batches[0][0])}
            rows.append(row)
            log("%s %s (%s): median %.4f s, %.1f residues/s, passes %s"
                % (PEER, d, att, med, row["residues_per_s"] or 0.0, ", ".join("%.4f" % p for p in passes)))
        except Exception as e:
            msg = short_error(e)
            rows.append({"dtype": d, "error": msg})
            log("%s %s: error: %s" % (PEER, d, msg))
        finally:
            del model
            gc.collect()
            if is_cuda:
                try:
                    torch.cuda.empty_cache()
                except Exception:
                    pass
        report["attention"] = attention
        write_json(args.out, report)  # keep partial results if a later dtype crashes the process

    report["attention"] = attention
    write_json(args.out, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
