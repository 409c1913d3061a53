#!/usr/bin/env python3
"""frag_report.py: tables and an SVG chart from the raw outputs of frag.sh.

Usage: frag_report.py OUT_DIR RUNS "PATTERNS" "ALLOCATORS"

Reads OUT_DIR/raw/<pattern>.<allocator>.<run>.out (the stdout of one
bench_frag_<pattern> run; a run that failed has a .fail file next to it),
prints markdown tables on stdout and writes OUT_DIR/frag.svg.  Python 3
standard library only.

RSS/live is (rss_bytes - meta_bytes) / live_bytes: meta_bytes is the
benchmark's own bookkeeping, mmapped outside the allocator and wholly
resident, so it is taken out.  Every number in the tables is the median over
the runs of one (pattern, allocator).
"""
import math
import os
import statistics
import sys

MIB = 1024.0 * 1024.0
COLOURS = {
    "glibc": "#1f77b4",
    "jemalloc": "#ff7f0e",
    "mimalloc": "#2ca02c",
    "tcmalloc": "#9467bd",
    "tessera": "#d62728",
}
BASE = "tessera"


def parse_kv(line):
    out = {}
    for field in line.split():
        if "=" in field:
            k, v = field.split("=", 1)
            out[k] = v
    return out


def num(d, key):
    try:
        return float(d[key])
    except (KeyError, ValueError):
        return None


def load(path):
    """One run: {'phases': [dict...], 'samples': [dict...], 'done': dict}."""
    run = {"phases": [], "samples": [], "done": None}
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.startswith("phase="):
                run["phases"].append(parse_kv(line))
            elif line.startswith("sample "):
                run["samples"].append(parse_kv(line))
            elif line.startswith("done "):
                run["done"] = parse_kv(line)
    return run


def ratio(d, rss_key="rss_bytes", live_key="live_bytes"):
    live, rss, meta = num(d, live_key), num(d, rss_key), num(d, "meta_bytes")
    if not live or live <= 0 or rss is None:
        return None
    return (rss - (meta or 0.0)) / live


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def main():
    if len(sys.argv) != 5:
        sys.exit("usage: frag_report.py OUT_DIR RUNS PATTERNS ALLOCATORS")
    out_dir, runs = sys.argv[1], int(sys.argv[2])
    patterns, allocs = sys.argv[3].split(), sys.argv[4].split()
    raw = os.path.join(out_dir, "raw")

    # data[pattern][alloc] = list of parsed runs; fails[pattern][alloc] = count
    data, fails = {}, {}
    for p in patterns:
        data[p], fails[p] = {}, {}
        for a in allocs:
            data[p][a], fails[p][a] = [], 0
            for r in range(1, runs + 1):
                stem = os.path.join(raw, "%s.%s.%d" % (p, a, r))
                if os.path.exists(stem + ".fail") or not os.path.exists(stem + ".out"):
                    fails[p][a] += 1
                    continue
                run = load(stem + ".out")
                if run["done"] is None or not run["phases"]:
                    fails[p][a] += 1
                    continue
                data[p][a].append(run)

    others = [a for a in allocs if a != BASE]
    has_base = BASE in allocs

    def cell(p, a, value):
        if fails[p][a] and not data[p][a]:
            return "FAIL %d/%d" % (fails[p][a], runs)
        text = value
        if fails[p][a]:
            text += " (FAIL %d/%d)" % (fails[p][a], runs)
        return text

    # Rows: (pattern, row name, per-run function giving a number or None).
    def phase_names(p):
        for a in allocs:
            if data[p][a]:
                return [ph["phase"] for ph in data[p][a][0]["phases"]]
        return []

    def phase_of(run, name):
        for ph in run["phases"]:
            if ph.get("phase") == name:
                return ph
        return None

    rows = []
    for p in patterns:
        names = phase_names(p)
        for name in names:
            rows.append((p, name, (lambda n: lambda run: ratio(phase_of(run, n) or {}))(name),
                         (lambda n: lambda run: num(phase_of(run, n) or {}, "live_bytes"))(name)))
        if p == "cache":
            rows.append((p, "worst phase end",
                         lambda run: max((ratio(ph) for ph in run["phases"] if ratio(ph)),
                                         default=None), None))
            rows.append((p, "worst moment (cache >=90% full)",
                         lambda run: max((ratio(ph, "worst_rss_bytes", "worst_live_bytes")
                                          for ph in run["phases"]
                                          if ratio(ph, "worst_rss_bytes", "worst_live_bytes")),
                                         default=None), None))

    print("## RSS / live bytes at the end of each phase (median of %d runs; lower is better)" % runs)
    print()
    print("RSS is /proc/self/statm resident bytes minus the benchmark's own bookkeeping;")
    print("live is the exact sum of the sizes the program holds.  Phases with nothing")
    print("live are left out (see the resident-after-free table).  frag_cache's worst")
    print("moment is the highest RSS/live read during any phase while the cache was at")
    print("least 90% full (RSS read every 2 MiB inserted).")
    if has_base:
        print("`tessera/best` = tessera's ratio over the lowest of the others (above 1:")
        print("tessera holds more memory than the best other allocator).")
    print()
    hdr = "| pattern | phase | live MiB |" + "".join(" %s |" % a for a in allocs)
    sep = "|---|---|---:|" + "---:|" * len(allocs)
    if has_base:
        hdr += " tessera/best |"
        sep += "---:|"
    print(hdr)
    print(sep)
    for p, name, fn, live_fn in rows:
        meds = {}
        for a in allocs:
            meds[a] = median([fn(run) for run in data[p][a]])
        if live_fn is not None:
            live = median([live_fn(run) for a in allocs for run in data[p][a]])
            if not live:
                continue
            live_txt = "%.1f" % (live / MIB)
        else:
            live_txt = ""
        line = "| frag_%s | %s | %s |" % (p, name, live_txt)
        for a in allocs:
            line += " %s |" % cell(p, a, fmt(meds[a], ".2f"))
        if has_base:
            best = [meds[a] for a in others if meds[a] is not None]
            if meds[BASE] is not None and best and min(best) > 0:
                line += " %.2f |" % (meds[BASE] / min(best))
            else:
                line += " - |"
        print(line)

    print()
    print("## Peak RSS: median MiB (VmHWM minus bookkeeping)")
    print()
    hdr = "| pattern | bookkeeping MiB |" + "".join(" %s |" % a for a in allocs)
    print(hdr)
    print("|---|---:|" + "---:|" * len(allocs))
    for p in patterns:
        meta = median([num(run["phases"][-1], "meta_bytes") for a in allocs for run in data[p][a]])
        line = "| frag_%s | %s |" % (p, fmt(meta / MIB if meta is not None else None, ".1f"))
        for a in allocs:
            v = median([(num(run["phases"][-1], "peak_rss_bytes") or 0) -
                        (num(run["phases"][-1], "meta_bytes") or 0) for run in data[p][a]])
            line += " %s |" % cell(p, a, fmt(v / MIB if v is not None else None, ".1f"))
        print(line)

    if "realloc" in patterns:
        print()
        print("## frag_realloc: MiB still resident after freeing everything")
        print()
        print("RSS at the phase minus RSS at `start` (before the first malloc), median.")
        print()
        print("| phase |" + "".join(" %s |" % a for a in allocs))
        print("|---|" + "---:|" * len(allocs))
        for name in ("after_free", "after_free_idle"):
            line = "| %s |" % name
            for a in allocs:
                vals = []
                for run in data["realloc"][a]:
                    s, e = phase_of(run, "start"), phase_of(run, name)
                    if s and e:
                        vals.append((num(e, "rss_bytes") - num(s, "rss_bytes")) / MIB)
                line += " %s |" % cell("realloc", a, fmt(median(vals), ".1f"))
            print(line)

    print()
    print("## Run time: median seconds per run (whole program, idle phases included)")
    print()
    print("| pattern |" + "".join(" %s |" % a for a in allocs))
    print("|---|" + "---:|" * len(allocs))
    for p in patterns:
        line = "| frag_%s |" % p
        for a in allocs:
            v = median([num(run["done"], "seconds") for run in data[p][a]])
            line += " %s |" % cell(p, a, fmt(v, ".1f"))
        print(line)

    svg_path = os.path.join(out_dir, "frag.svg")
    write_svg(svg_path, patterns, allocs, data)
    print()
    print("Chart (RSS over time, one panel per pattern): %s" % svg_path)


# ---------------------------------------------------------------- SVG chart

def nice_step(span, target):
    """A 1/2/5 x 10^k step giving about `target` intervals over span."""
    if span <= 0:
        return 1.0
    raw = span / target
    mag = 10.0 ** math.floor(math.log10(raw))
    for m in (1, 2, 5, 10):
        if m * mag >= raw:
            return m * mag
    return 10 * mag


def esc(s):
    return (str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


def representative(runs):
    """The run whose last-phase RSS is the median (lower middle) of the runs."""
    if not runs:
        return None
    ordered = sorted(runs, key=lambda r: num(r["phases"][-1], "rss_bytes") or 0)
    return ordered[(len(ordered) - 1) // 2]


def write_svg(path, patterns, allocs, data):
    width, panel_h = 960, 250
    left, right, top, gap = 70, 20, 60, 60
    plot_w = width - left - right
    height = top + len(patterns) * (panel_h + gap) + 10
    out = []
    out.append('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
               'viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">'
               % (width, height, width, height))
    out.append('<rect width="100%" height="100%" fill="white"/>')
    out.append('<text x="%d" y="22" font-size="16" font-weight="bold">tessera fragmentation '
               'benchmarks: RSS over time (bookkeeping excluded)</text>' % left)
    # legend
    x = left
    for a in allocs:
        out.append('<line x1="%d" y1="40" x2="%d" y2="40" stroke="%s" stroke-width="2.5"/>'
                   % (x, x + 24, COLOURS.get(a, "#333")))
        out.append('<text x="%d" y="44">%s</text>' % (x + 30, esc(a)))
        x += 40 + 8 * len(a) + 20
    out.append('<line x1="%d" y1="40" x2="%d" y2="40" stroke="#555" stroke-width="1.5" '
               'stroke-dasharray="5,4"/>' % (x, x + 24))
    out.append('<text x="%d" y="44">live bytes</text>' % (x + 30))
    x += 120
    out.append('<circle cx="%d" cy="40" r="3.5" fill="#555"/>' % x)
    out.append('<text x="%d" y="44">phase end (hover for name)</text>' % (x + 8))

    for i, p in enumerate(patterns):
        y0 = top + i * (panel_h + gap) + 20
        reps = {a: representative(data[p][a]) for a in allocs}
        series = {}
        for a, run in reps.items():
            if run is None:
                continue
            pts = []
            # the phase lines are readings too: merged in, the curve passes
            # through the phase-end dots; the clean-up after the last phase
            # is left out
            t_end = max(num(ph, "t") or 0 for ph in run["phases"])
            for s in run["samples"] + run["phases"]:
                t, rss, meta = num(s, "t"), num(s, "rss_bytes"), num(s, "meta_bytes") or 0
                if t is not None and t <= t_end and rss is not None and rss >= 0:
                    pts.append((t, (rss - meta) / MIB, (num(s, "live_bytes") or 0) / MIB))
            pts = sorted(pts)
            # FRAG_SVG_POINTS thins each line to about that many points
            # (every phase-end point kept), for a chart small enough to commit.
            limit = int(os.environ.get("FRAG_SVG_POINTS", "0") or 0)
            if limit and len(pts) > limit:
                step = len(pts) / float(limit)
                keep = {int(k * step) for k in range(limit)} | {len(pts) - 1}
                phase_t = {num(ph, "t") for ph in run["phases"]}
                pts = [pt for k, pt in enumerate(pts) if k in keep or pt[0] in phase_t]
            series[a] = pts
        t_max = max([pt[0] for pts in series.values() for pt in pts] +
                    [num(ph, "t") or 0 for run in reps.values() if run for ph in run["phases"]] +
                    [0.1])
        y_max = max([max(pt[1], pt[2]) for pts in series.values() for pt in pts] + [1.0])
        y_step = nice_step(y_max, 5)
        y_top = y_step * (int(y_max / y_step) + 1)
        t_step = nice_step(t_max, 10)

        def sx(t):
            return left + plot_w * t / t_max

        def sy(v):
            return y0 + panel_h - panel_h * v / y_top

        out.append('<text x="%d" y="%d" font-size="14" font-weight="bold">frag_%s</text>'
                   % (left, y0 - 8, esc(p)))
        first = next((run for run in reps.values() if run), None)
        if first:
            out.append('<text x="%d" y="%d" fill="#555">dots, in order: %s</text>'
                       % (left + 130, y0 - 8,
                          esc(" \u2192 ".join(ph.get("phase", "?") for ph in first["phases"]))))
        out.append('<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#999"/>'
                   % (left, y0, plot_w, panel_h))
        v = 0.0
        while v <= y_top + 1e-9:
            yy = sy(v)
            out.append('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#e5e5e5"/>'
                       % (left, yy, left + plot_w, yy))
            out.append('<text x="%d" y="%.1f" text-anchor="end">%g</text>' % (left - 6, yy + 4, v))
            v += y_step
        out.append('<text x="16" y="%d" transform="rotate(-90 16 %d)" text-anchor="middle">'
                   'MiB</text>' % (y0 + panel_h // 2, y0 + panel_h // 2))
        t = 0.0
        while t <= t_max + 1e-9:
            xx = sx(t)
            out.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#999"/>'
                       % (xx, y0 + panel_h, xx, y0 + panel_h + 4))
            out.append('<text x="%.1f" y="%d" text-anchor="middle">%g</text>'
                       % (xx, y0 + panel_h + 16, round(t, 6)))
            t += t_step
        out.append('<text x="%d" y="%d" text-anchor="end">seconds</text>'
                   % (left + plot_w, y0 + panel_h + 32))

        # live bytes of the first allocator with data (the same program runs
        # under each, at its own speed)
        live_src = next((a for a in allocs if series.get(a)), None)
        if live_src:
            d = " ".join("%.1f,%.1f" % (sx(pt[0]), sy(pt[2])) for pt in series[live_src])
            out.append('<polyline points="%s" fill="none" stroke="#555" stroke-width="1.5" '
                       'stroke-dasharray="5,4"><title>live bytes (%s run)</title></polyline>'
                       % (d, esc(live_src)))
        for a in allocs:
            pts = series.get(a)
            if not pts:
                continue
            colour = COLOURS.get(a, "#333")
            d = " ".join("%.1f,%.1f" % (sx(pt[0]), sy(pt[1])) for pt in pts)
            out.append('<polyline points="%s" fill="none" stroke="%s" stroke-width="2" '
                       'stroke-linejoin="round"><title>%s</title></polyline>' % (d, colour, esc(a)))
            for ph in reps[a]["phases"]:
                t, rss = num(ph, "t"), num(ph, "rss_bytes")
                if t is None or rss is None:
                    continue
                mib = (rss - (num(ph, "meta_bytes") or 0)) / MIB
                r = ratio(ph)
                out.append('<circle cx="%.1f" cy="%.1f" r="3.5" fill="%s"><title>%s %s: %.1f MiB'
                           '%s</title></circle>'
                           % (sx(t), sy(mib), colour, esc(a), esc(ph.get("phase", "?")), mib,
                              ", RSS/live %.2f" % r if r else ""))
    out.append("</svg>")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
