#!/usr/bin/env python3
"""Our compiled ONNX graph through Python onnxruntime's CUDAExecutionProvider.

What is measured
----------------
The wall-clock time onnxruntime (CUDAExecutionProvider only, no CPU fallback
accepted) needs to embed a workload written by our Node side with esm2-serve's
own compiled ONNX graph (input ``input_ids`` int64 [batch, tokens]; outputs
``logits``, ``hidden_0`` .. ``hidden_L``; external weights ``model.onnx.data``
beside it, found by relative path).

Why it matches our engine's work
--------------------------------
Per batch, inside the timed loop, the script does what our engine does for a
mean-of-last-layer embedding request:

* builds the right-padded int64 ``input_ids`` (pad_token_id) on the host
  (plus an ``attention_mask`` only if the graph declares one);
* runs the session fetching ONLY the requested output (``--fetch``, default the
  highest-numbered ``hidden_K``), so onnxruntime copies just that tensor back;
* averages it on the host with numpy over each row's residue tokens,
  positions 1 .. len-2 (cls, eos and padding excluded), in float32.

One untimed warm-up pass over all batches (the engine's batches, in order),
then ``--repeats`` timed passes (``time.perf_counter``; ``session.run`` returns
host arrays, so no extra synchronisation is needed). residues/s = workload
residues / median pass seconds.

Output (``--out``)::

    {"onnxruntime": ver, "providers": [session providers], "device": "cuda",
     "rows": [{"graph": <basename of the onnx file's folder>, "passes_s": [...],
               "median_s": x, "residues_per_s": y}],
     "skipped": null, ...}

Without onnxruntime/numpy, or when ``onnxruntime.get_available_providers()``
lacks CUDAExecutionProvider, or when the session silently falls back to CPU:
``{"skipped": "<reason>", "rows": []}`` and exit 0. A failure while creating
the session or running gives ``{"graph": ..., "error": "..."}`` as the row,
exit 0. An unreadable/invalid workload file also gives a "skipped" JSON naming
the problem, exit 0 (the driver replaces the report of a failed run).

Only the standard library is imported at module level.
"""

import argparse
import json
import os
import re
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peer_common import load_workload, log, positive_int, short_error, write_json  # noqa: E402

CUDA_EP = "CUDAExecutionProvider"


def default_fetch(output_names):
    """The highest-numbered hidden_K output, or None."""
    best = None
    for name in output_names:
        m = re.fullmatch(r"hidden_(\d+)", name)
        if m and (best is None or int(m.group(1)) > best[0]):
            best = (int(m.group(1)), name)
    return best[1] if best else None


def run_pass(np, session, input_names, fetch, tokens, batches, pad, collect=None):
    """One pass over all batches; returns seconds. Residue means are computed on the host.

    ``collect`` (a dict, untimed check runs only) receives {sequence index: mean array}."""
    t0 = time.perf_counter()
    for batch in batches:
        rows = [tokens[i] for i in batch]
        width = max(len(r) for r in rows)
        ids = np.full((len(rows), width), pad, dtype=np.int64)
        for j, r in enumerate(rows):
            ids[j, :len(r)] = r
        feeds = {"input_ids": ids}
        if "attention_mask" in input_names:
            mask = np.zeros((len(rows), width), dtype=np.int64)
            for j, r in enumerate(rows):
                mask[j, :len(r)] = 1
            feeds["attention_mask"] = mask
        (h,) = session.run([fetch], feeds)  # [B, T, H] on the host
        means = np.empty((len(rows), h.shape[-1]), dtype=np.float32)
        for j, r in enumerate(rows):
            seg = h[j, 1:len(r) - 1]
            if seg.shape[0] == 0:
                means[j] = 0.0
            else:
                means[j] = seg.mean(axis=0, dtype=np.float32)
        if collect is not None:
            for j, i in enumerate(batch):
                collect[i] = means[j]
    return time.perf_counter() - t0


def check_values(np, session, input_names, fetch, tokens, batches, pad):
    """Untimed: the first batch's residue means, summarised so runs can be compared with our engine's."""
    got = {}
    run_pass(np, session, input_names, fetch, tokens, batches[:1], pad, collect=got)
    i = batches[0][0]
    return {"sequence": i, "mean_head": [round(float(x), 6) for x in got[i][:4]],
            "mean_abs_sum": round(float(sum(float(abs(v).sum()) for v in got.values())), 6)}


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="Time esm2-serve's compiled ONNX graph through Python onnxruntime's "
                    "CUDAExecutionProvider on a workload from the Node side. Per batch: host int64 "
                    "input_ids, session.run fetching one hidden output, residue-mean on the host with "
                    "numpy. Writes a JSON report; exits 0 with a 'skipped' reason when onnxruntime, "
                    "numpy or the CUDA provider is unavailable.")
    ap.add_argument("--onnx", required=True, help="path to model.onnx (external weights model.onnx.data beside it)")
    ap.add_argument("--workload", required=True, help="workload JSON written by the Node side (tokens, batches, residues, pad_token_id)")
    ap.add_argument("--repeats", type=positive_int, default=3, help="timed passes after one warm-up (default: 3)")
    ap.add_argument("--out", required=True, help="where to write the JSON report")
    ap.add_argument("--fetch", default=None,
                    help="output to fetch, e.g. hidden_30 (default: the highest-numbered hidden_K in the graph)")
    ap.add_argument("--preload-dlls", action="store_true",
                    help="call onnxruntime.preload_dlls() first (loads CUDA/cuDNN from pip 'nvidia-*' "
                         "packages, e.g. torch's); off by default")
    args = ap.parse_args(argv)

    try:
        model_name, residues, pad, tokens, batches, wl_notes = load_workload(args.workload)
    except (OSError, ValueError) as e:
        reason = "workload %s unreadable or invalid: %s" % (args.workload, e)
        write_json(args.out, {"skipped": reason, "rows": []})
        log("ort-cuda: %s" % reason)
        return 0

    def skip(reason, **extra):
        obj = {"skipped": reason, "rows": []}
        obj.update(extra)
        write_json(args.out, obj)
        log("ort-cuda: skipped: %s" % reason)
        return 0

    try:
        import onnxruntime as ort
    except Exception as e:
        return skip("onnxruntime not importable (%s: %s)" % (type(e).__name__, e))
    ver = getattr(ort, "__version__", "?")
    try:
        import numpy as np
    except Exception as e:
        return skip("numpy not importable (%s: %s)" % (type(e).__name__, e), onnxruntime=ver)

    notes = list(wl_notes)
    if args.preload_dlls:
        try:
            ort.preload_dlls()
            notes.append("onnxruntime.preload_dlls() called")
        except Exception as e:
            notes.append("onnxruntime.preload_dlls() failed: %s" % short_error(e))

    available = list(ort.get_available_providers())
    if CUDA_EP not in available:
        return skip("onnxruntime %s providers: [%s] — no %s" % (ver, ", ".join(available), CUDA_EP),
                    onnxruntime=ver, providers=available)

    onnx_path = os.path.abspath(args.onnx)
    graph = os.path.basename(os.path.dirname(onnx_path))
    rows = []
    report = {
        "onnxruntime": ver, "providers": [], "device": "cuda", "rows": rows, "skipped": None,
        "model": model_name, "onnx": onnx_path, "available_providers": available, "fetch": None,
        "residues": residues, "sequences": sum(len(b) for b in batches), "batches": len(batches),
        "repeats": args.repeats, "notes": notes,
    }
    log("ort-cuda: onnxruntime %s, graph %s, %d batches, %s residues" % (ver, graph, len(batches), residues))

    try:
        so = ort.SessionOptions()
        session = ort.InferenceSession(onnx_path, sess_options=so, providers=[CUDA_EP])
    except Exception as e:
        rows.append({"graph": graph, "error": "session creation failed: " + short_error(e)})
        log("ort-cuda %s: error: %s" % (graph, rows[-1]["error"]))
        write_json(args.out, report)
        return 0

    used = list(session.get_providers())
    report["providers"] = used
    if CUDA_EP not in used:
        report["skipped"] = "session providers [%s] — %s was requested but not used (fell back); timing skipped" % (
            ", ".join(used), CUDA_EP)
        write_json(args.out, report)
        log("ort-cuda: skipped: %s" % report["skipped"])
        return 0

    try:
        input_names = [i.name for i in session.get_inputs()]
        output_names = [o.name for o in session.get_outputs()]
        if "input_ids" not in input_names:
            raise ValueError("graph has no input_ids input (inputs: %s)" % ", ".join(input_names))
        unknown = [n for n in input_names if n not in ("input_ids", "attention_mask")]
        if unknown:
            raise ValueError("graph has inputs this script does not feed: %s" % ", ".join(unknown))
        fetch = args.fetch or default_fetch(output_names)
        if fetch is None:
            raise ValueError("graph has no hidden_K output; pass --fetch (outputs: %s)" % ", ".join(output_names))
        if fetch not in output_names:
            raise ValueError("--fetch %s is not an output (outputs: %s)" % (fetch, ", ".join(output_names)))
        report["fetch"] = fetch
        run_pass(np, session, input_names, fetch, tokens, batches, pad)  # warm-up, untimed
        passes = [run_pass(np, session, input_names, fetch, tokens, batches, pad) for _ in range(args.repeats)]
        med = statistics.median(passes)
        row = {"graph": graph, "fetch": fetch, "passes_s": [round(p, 6) for p in passes],
               "median_s": round(med, 6), "residues_per_s": round(residues / med, 3) if med > 0 else None}
        row["check"] = check_values(np, session, input_names, fetch, tokens, batches, pad)
        rows.append(row)
        log("ort-cuda %s (%s): median %.4f s, %.1f residues/s, passes %s"
            % (graph, fetch, med, row["residues_per_s"] or 0.0, ", ".join("%.4f" % p for p in passes)))
    except Exception as e:
        rows.append({"graph": graph, "error": short_error(e)})
        log("ort-cuda %s: error: %s" % (graph, rows[-1]["error"]))

    write_json(args.out, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
