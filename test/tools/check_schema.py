#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# check_schema.py: checks a file of tessera's JSON snapshots (JSON lines, as
# written with stats_file and by `tessera run --json`) against the fields of
# src/stats_print.c (format_json): every documented top-level field with its
# type, the entries of classes, arenas and tags, and the ledger's identities
# (committed is the sum of the six parts; allocated = requested + rounding;
# an arena's committed = used + slab_free + dirty + metadata).  Unknown
# fields are allowed.  Standard library only.
#
# Usage: check_schema.py FILE [--pid N] [--final]
#   --pid N   every snapshot must come from process N
#   --final   the file must end with a final snapshot (with arenas)
# Prints "ok: N snapshots" and exits 0, or prints every problem and exits 1.
import json
import sys

UINT, NUMBER, BOOL, STRING = "unsigned integer", "number", "boolean", "string"

PARTS = ["requested_bytes", "rounding_bytes", "cached_bytes", "slab_free_bytes", "dirty_bytes", "metadata_bytes"]

TOP = {
    "tessera": STRING,
    "stats_version": UINT,
    "pid": UINT,
    "time_ms": UINT,
    "final": BOOL,
    "requested_exact": BOOL,
    **{p: UINT for p in PARTS},
    "committed_bytes": UINT,
    "allocated_bytes": UINT,
    "large_bytes": UINT,
    "huge_bytes": UINT,
    "mapped_bytes": UINT,
    "resident_bytes": UINT,
    "process_rss_bytes": UINT,
    "process_rss_peak_bytes": UINT,
    "returned_bytes": UINT,
    "requested_peak_bytes": UINT,
    "allocated_peak_bytes": UINT,
    "resident_peak_bytes": UINT,
    "frag_ratio": NUMBER,
    "huge_blocks": UINT,
}
SHARES = {k: NUMBER for k in ["rounding", "cached", "slab_free", "dirty", "metadata"]}
CALLS = {k: UINT for k in ["malloc", "free", "calloc", "realloc", "aligned", "remote_free"]}
CLASS = {k: UINT for k in ["size", "slabs", "slab_bytes", "objects", "used", "live", "cached", "foreign",
                           "hosted_bytes"]}
CLASS["utilisation"] = NUMBER
ARENA = {k: UINT for k in ["index", "requested_bytes", "used_bytes", "slab_free_bytes", "dirty_bytes",
                           "metadata_bytes", "committed_bytes", "mapped_bytes", "resident_bytes", "chunks",
                           "threads"]}
TAG = {"name": STRING, "requested_bytes": UINT, "peak_bytes": UINT, "allocations": UINT}


def type_ok(value, kind):
    if kind == BOOL:
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if kind == UINT:
        return isinstance(value, int) and value >= 0
    if kind == NUMBER:
        return isinstance(value, (int, float))
    return isinstance(value, str)


def check_fields(obj, fields, where, problems):
    if not isinstance(obj, dict):
        problems.append(f"{where}: not an object")
        return False
    ok = True
    for name, kind in fields.items():
        if name not in obj:
            problems.append(f"{where}: no field {name!r}")
            ok = False
        elif not type_ok(obj[name], kind):
            problems.append(f"{where}: {name!r} is {obj[name]!r}, expected a {kind}")
            ok = False
    return ok


def check_list(snap, name, fields, where, problems, check_entry=None):
    if name not in snap:
        return
    if not isinstance(snap[name], list):
        problems.append(f"{where}: {name!r} is not an array")
        return
    for i, entry in enumerate(snap[name]):
        at = f"{where}: {name}[{i}]"
        if check_fields(entry, fields, at, problems) and check_entry:
            check_entry(entry, at, problems)


def check_arena(a, at, problems):
    parts = a["used_bytes"] + a["slab_free_bytes"] + a["dirty_bytes"] + a["metadata_bytes"]
    if a["committed_bytes"] != parts:
        problems.append(f"{at}: committed_bytes {a['committed_bytes']} != used + slab_free + dirty + metadata {parts}")


def check_snapshot(snap, where, problems):
    if not check_fields(snap, TOP, where, problems):
        return
    check_fields(snap.get("frag_shares"), SHARES, f"{where}: frag_shares", problems)
    check_fields(snap.get("calls"), CALLS, f"{where}: calls", problems)
    check_list(snap, "classes", CLASS, where, problems)
    check_list(snap, "arenas", ARENA, where, problems, check_arena)
    check_list(snap, "tags", TAG, where, problems)
    parts = sum(snap[p] for p in PARTS)
    if snap["committed_bytes"] != parts:
        problems.append(f"{where}: committed_bytes {snap['committed_bytes']} != sum of the six parts {parts}")
    if snap["allocated_bytes"] != snap["requested_bytes"] + snap["rounding_bytes"]:
        problems.append(f"{where}: allocated_bytes != requested_bytes + rounding_bytes")


def main(argv):
    args = argv[1:]
    if not args or args[0].startswith("-"):
        print("usage: check_schema.py FILE [--pid N] [--final]", file=sys.stderr)
        return 2
    path, pid, need_final = args[0], None, False
    i = 1
    while i < len(args):
        if args[i] == "--pid" and i + 1 < len(args):
            pid, i = int(args[i + 1]), i + 2
        elif args[i] == "--final":
            need_final, i = True, i + 1
        else:
            print(f"check_schema.py: unknown argument {args[i]!r}", file=sys.stderr)
            return 2
    problems, snaps = [], []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                snap = json.loads(line)
            except json.JSONDecodeError as e:
                problems.append(f"line {n}: not JSON: {e}")
                continue
            check_snapshot(snap, f"line {n}", problems)
            snaps.append((n, snap))
    if not snaps:
        problems.append("no snapshots")
    last_time = 0
    for n, s in snaps:
        if not isinstance(s, dict):
            continue
        if pid is not None and s.get("pid") != pid:
            problems.append(f"line {n}: pid {s.get('pid')}, expected {pid}")
        t = s.get("time_ms", 0)
        if isinstance(t, int) and t < last_time:
            problems.append(f"line {n}: time_ms goes back ({t} after {last_time})")
        last_time = t if isinstance(t, int) else last_time
    if need_final and snaps:
        n, last = snaps[-1]
        if not isinstance(last, dict) or last.get("final") is not True:
            problems.append(f"line {n}: the last snapshot is not final")
        elif "arenas" not in last or "classes" not in last:
            problems.append(f"line {n}: the final snapshot has no arenas or classes")
        finals = [m for m, s in snaps if isinstance(s, dict) and s.get("final") is True]
        if len(finals) != 1:
            problems.append(f"{len(finals)} final snapshots (lines {finals}), expected 1")
    for p in problems[:50]:
        print(f"{path}: {p}")
    if problems:
        print(f"{path}: {len(problems)} problems")
        return 1
    print(f"ok: {len(snaps)} snapshots")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
