#!/bin/bash
# SPDX-License-Identifier: MIT
# tools/render: the HTML report of `tessera run --report` in headless
# Chromium.  After load, the page's own script checks that the chart has
# its polylines and sets data-rendered="ok" on <body>: --dump-dom must show
# it (for a tessera run with four series and a glibc run with one), and a
# 1200x900 screenshot must be a PNG of that size (signature and IHDR read
# with python3).  Skipped (77) when /usr/bin/chromium is not installed.
# Usage: render.sh TESSERA_TOOL FRAGPROG
. "$(dirname "$0")/common.sh"

CHROMIUM=/usr/bin/chromium
[ -x "$CHROMIUM" ] || skip "$CHROMIUM is not installed (apt-get install chromium)"

# chromium ARGS...: headless, offline, with a profile (and HOME) of its own
# each time.
chromium() {
  local profile
  profile=$(mktemp -d "$WORK/profile.XXXXXX") || fail "mktemp"
  HOME=$profile timeout 60 "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$profile" "$@"
}

expect_rc 0 run "$TOOL" run --interval 20 --report report.html -- "$PROG" --quick '<b>&amp;'
expect_rc 0 glibc "$TOOL" run --allocator glibc --interval 20 --report glibc.html -- "$PROG" --quick

for page in report glibc; do
  chromium --dump-dom "file://$WORK/$page.html" >"$page.dom" 2>"$page.chromium.err" \
    || { tail -n 20 "$page.chromium.err" >&2; fail "chromium --dump-dom $page.html failed"; }
  grep -q '<body[^>]* data-rendered="ok"' "$page.dom" || {
    grep -o '<body[^>]*>' "$page.dom" >&2
    tail -n 20 "$page.chromium.err" >&2
    fail "$page.html: the page's check did not set data-rendered=\"ok\""
  }
  echo "ok: $page.html renders (data-rendered=\"ok\")"
done
# the name was escaped, so the DOM has it as text and no <b> element
grep -q '&lt;b&gt;&amp;amp;' report.dom || fail "report.html: the program's name is not in the DOM as text"

chromium --screenshot="$WORK/report.png" --window-size=1200,900 "file://$WORK/report.html" >shot.out 2>shot.err \
  || { tail -n 20 shot.err >&2; fail "chromium --screenshot failed"; }
python3 - "$WORK/report.png" <<'EOF' || fail "report.png is not a 1200x900 PNG"
import struct, sys
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "no PNG signature"
length, kind = struct.unpack(">I4s", data[8:16])
assert kind == b"IHDR" and length == 13, f"first chunk is {kind!r}, not IHDR"
width, height = struct.unpack(">II", data[16:24])
assert (width, height) == (1200, 900), f"{width}x{height}, expected 1200x900"
print(f"ok: report.png is a {width}x{height} PNG of {len(data)} bytes")
EOF
echo "tools/render: ok"
