#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# check_report.py: checks a report of `tessera run --report` without a
# browser: the SVG (the file itself, or the <svg> element inside the HTML
# page) must be well-formed XML with a title naming the program, axis
# labels, a legend entry and one polyline of at least two points inside the
# plot for each expected series, and nothing loaded from elsewhere.  For an
# HTML page also: the summary table, the escaped program name and the
# script that sets data-rendered.  Standard library only.
#
# Usage: check_report.py FILE.svg|FILE.html TITLE_TEXT SERIES[,SERIES...]
#   TITLE_TEXT  text the title must contain (unescaped)
#   SERIES      data-series names expected, e.g. requested,allocated,committed,resident,rss
# Prints "ok: ..." and exits 0, or prints the problem and exits 1.
import re
import sys
import xml.etree.ElementTree as ET

SVG = "{http://www.w3.org/2000/svg}"


def fail(msg):
    print(f"check_report.py: {sys.argv[1]}: {msg}")
    sys.exit(1)


def main():
    if len(sys.argv) != 4:
        print("usage: check_report.py FILE TITLE_TEXT SERIES[,SERIES...]", file=sys.stderr)
        return 2
    path, title_text, want = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    is_html = path.endswith((".html", ".htm"))
    if is_html:
        if not text.startswith("<!DOCTYPE html>"):
            fail("no <!DOCTYPE html>")
        m = re.search(r"<svg\b.*?</svg>", text, re.S)
        if not m:
            fail("no <svg> element in the page")
        svg_text = m.group(0)
        for needle in ['<table id="summary">', "document.body.dataset.rendered", 'window.addEventListener("load"']:
            if needle not in text:
                fail(f"the page lacks {needle!r}")
        if re.search(r"<(link|iframe|img|object|embed)\b|\bsrc=|@import|url\(", text):
            fail("the page loads something from elsewhere")
    else:
        if not text.startswith('<?xml version="1.0" encoding="UTF-8"?>'):
            fail("no XML declaration")
        svg_text = text
    if re.search(r"\bhref=|@import|url\(", svg_text):
        fail("the SVG refers to something elsewhere")
    try:
        root = ET.fromstring(svg_text)
    except ET.ParseError as e:
        fail(f"the SVG is not well-formed XML: {e}")
    if root.tag != SVG + "svg":
        fail(f"root element is {root.tag}, not svg")
    width, height = float(root.get("width")), float(root.get("height"))
    title = root.find(SVG + "title")
    if title is None or title_text not in (title.text or ""):
        fail(f"title {title.text if title is not None else None!r} does not contain {title_text!r}")
    texts = ["".join(t.itertext()) for t in root.iter(SVG + "text")]
    for needle in ["seconds since start", "MiB"]:
        if needle not in texts:
            fail(f"no axis label {needle!r}")
    if not any(title_text in t for t in texts):
        fail("no visible title naming the program")
    lines = [p for p in root.iter(SVG + "polyline") if p.get("class") == "series"]
    names = [p.get("data-series") for p in lines]
    if names != want:
        fail(f"series {names}, expected {want}")
    if root.get("data-series") != str(len(want)):
        fail(f"data-series={root.get('data-series')!r}, expected {len(want)}")
    for p in lines:
        pts = [tuple(map(float, xy.split(","))) for xy in p.get("points").split()]
        if len(pts) < 2:
            fail(f"series {p.get('data-series')} has {len(pts)} points")
        for x, y in pts:
            if not (0 <= x <= width and 0 <= y <= height):
                fail(f"series {p.get('data-series')}: point {x},{y} outside the chart")
        xs = [x for x, _ in pts]
        if xs != sorted(xs):
            fail(f"series {p.get('data-series')}: time goes back")
    numeric = [t for t in texts if re.fullmatch(r"[0-9]+(\.[0-9]+)?", t)]
    if len(numeric) < 4:
        fail(f"too few tick labels: {numeric}")
    print(f"ok: {path}: {len(lines)} series ({', '.join(names)}), {len(numeric)} tick labels")
    return 0


if __name__ == "__main__":
    sys.exit(main())
