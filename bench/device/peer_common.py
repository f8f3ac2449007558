"""What the device check's Python peers (hf_peer.py, ort_cuda.py) share: the workload file our
Node side writes (bench/device/prepare.ts), the JSON they leave, logging and argument checks.
Standard library only, so a script can report a missing package as a result instead of failing."""
import argparse
import json
import os
import sys


def log(msg):
    print(msg, flush=True)


def write_json(path, obj):
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


def short_error(e, limit=600):
    text = " ".join(str(e).split())
    if len(text) > limit:
        text = text[:limit] + " ..."
    return "%s: %s" % (type(e).__name__, text)


def positive_int(text):
    v = int(text)
    if v < 1:
        raise argparse.ArgumentTypeError("must be >= 1")
    return v


def load_workload(path):
    """Read and check the workload JSON; returns (model, residues, pad, tokens, batches, notes)."""
    with open(path, "r", encoding="utf-8") as f:
        w = json.load(f)
    if not isinstance(w, dict):
        raise ValueError("workload is not a JSON object")
    tokens = w.get("tokens")
    batches = w.get("batches")
    pad = w.get("pad_token_id", 1)
    if not isinstance(tokens, list) or not tokens:
        raise ValueError("workload.tokens must be a non-empty list of int lists")
    for i, row in enumerate(tokens):
        if not isinstance(row, list) or len(row) < 2 or not all(isinstance(t, int) for t in row):
            raise ValueError("workload.tokens[%d] must be a list of >= 2 ints (cls ... eos)" % i)
    if not isinstance(batches, list) or not batches:
        raise ValueError("workload.batches must be a non-empty list of index lists")
    for b, batch in enumerate(batches):
        if not isinstance(batch, list) or not batch:
            raise ValueError("workload.batches[%d] must be a non-empty list" % b)
        for i in batch:
            if not isinstance(i, int) or i < 0 or i >= len(tokens):
                raise ValueError("workload.batches[%d] has index %r outside tokens" % (b, i))
    if not isinstance(pad, int):
        raise ValueError("workload.pad_token_id must be an int")
    notes = []
    counted = sum(len(tokens[i]) - 2 for batch in batches for i in batch)
    residues = w.get("residues")
    if not isinstance(residues, (int, float)) or residues <= 0:
        notes.append("workload.residues missing or invalid; using %d counted from the batches" % counted)
        residues = counted
    elif residues != counted:
        notes.append("workload.residues %s differs from %d counted from the batches (positions 1..len-2); "
                     "residues/s uses workload.residues" % (residues, counted))
    return w.get("model"), residues, pad, tokens, batches, notes
