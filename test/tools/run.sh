#!/bin/bash
# SPDX-License-Identifier: MIT
# tools/run: the tessera tool as a user runs it.  `tessera run` on fragprog
# writes the summary, an HTML and an SVG report and the JSON snapshots
# (checked by check_schema.py and check_report.py); under glibc it charts
# RSS only; `tessera stats` prints saved snapshots and rejects bad files
# with status 1; the program's exit status and signals pass through;
# processes the program starts are counted; the library is found beside
# the tool or in an installed layout; bad command lines exit 2.  With
# TS_FAKELEDGER (set by CTest: libtools_fakeledger.so), fixed snapshots
# check the summary's tags, top size classes and broken-line warning.
# Usage: run.sh TESSERA_TOOL FRAGPROG
. "$(dirname "$0")/common.sh"

# ---- command line ----
expect_rc 0 version "$TOOL" --version
want=$(sed -n 's/^#define TESSERA_VERSION "\(.*\)"$/tessera \1/p' "$HERE/../../include/tessera.h")
[ "$(cat version.out)" = "$want" ] || fail "--version says '$(cat version.out)', tessera.h '$want'"
expect_rc 0 help "$TOOL" --help
has help.out '^usage: tessera run' 'tessera stats FILE' '1\.2 to 4\.8x slower' 'TESSERA_LIB' '--allocator'
expect_rc 2 noargs "$TOOL"
expect_rc 2 badcmd "$TOOL" frobnicate
has badcmd.err "unknown command 'frobnicate'" '^usage:'
expect_rc 2 noprog "$TOOL" run --interval 50
expect_rc 2 badopt "$TOOL" run --frob -- true
expect_rc 2 badinterval "$TOOL" run --interval 0 -- true
expect_rc 2 badinterval2 "$TOOL" run --interval 12x -- true
expect_rc 2 badreport "$TOOL" run --report out.png -- true
has badreport.err 'must end in \.svg or \.html'
expect_rc 2 statsargs "$TOOL" stats
echo "ok: command line"

# ---- a run with the HTML report; the program's name needs escaping ----
name='x<y&z"q'"'"
expect_rc 0 html "$TOOL" run --interval 50 --report out.html --json out.jsonl -- "$PROG" "$name"
has html.out '^fragprog: ok'
has html.err '^tessera run summary$' \
  "^  program +$PROG 'x<y&z\"q'\\\\'\$" \
  "^  allocator +tessera \\($(dirname "$TOOL")/libtessera\\.so\\)\$" \
  '^  exit +status 0$' \
  '^  duration +[0-9]+\.[0-9]+ s$' \
  '^  RSS +peak [0-9.]+ MiB, mean [0-9.]+ MiB, final [0-9.]+ MiB \([0-9]+ samples, every 50 ms\)$' \
  '^  ledger +pid [0-9]+: final snapshot at [0-9.]+ s \([0-9]+ snapshots\); no other process left snapshots$' \
  '^  resident +peak [0-9.]+ MiB, final [0-9.]+ MiB' \
  '^  requested +[0-9.]+ MiB, peak [0-9.]+ MiB \(exact\)$' \
  '^  allocated +[0-9.]+ MiB, peak [0-9.]+ MiB$' \
  '^  at most requested [0-9.]+ s: requested [0-9.]+ MiB, committed [0-9.]+ MiB' \
  '^  committed +[0-9.]+ MiB$' \
  '^  fragmentation +[0-9]+\.[0-9]{3} \(committed / requested\)$' \
  '^  beyond requested +[0-9.]+ [KMG]?i?B: rounding [0-9.]+%, cached [0-9.]+%, slab_free [0-9.]+%, dirty [0-9.]+%, metadata [0-9.]+%$' \
  '^  top size classes by slab bytes:$'
lacks html.err 'tessera: (warning|error)'
pid=$(sed -n 's/^  ledger *pid \([0-9]*\):.*/\1/p' html.err)
[ -n "$pid" ] || fail "no pid in the summary"
python3 "$HERE/check_schema.py" out.jsonl --pid "$pid" --final || fail "out.jsonl: bad snapshots"
[ "$(wc -l <out.jsonl)" -ge 5 ] || fail "out.jsonl: only $(wc -l <out.jsonl) snapshots in a 1 s run at 50 ms"
python3 - out.jsonl <<'EOF' || fail "out.jsonl: fragprog's pattern is not in the ledger"
import json, sys
last = json.loads(open(sys.argv[1]).read().splitlines()[-1])
assert last["requested_exact"] is True, "requested is not exact"
assert last["requested_peak_bytes"] >= 50 << 20, f"requested peak {last['requested_peak_bytes']} < 50 MiB"
assert last["frag_ratio"] > 1.0, f"frag_ratio {last['frag_ratio']}"
assert any(c["slab_bytes"] > 0 for c in last["classes"]), "no slabs"
EOF
python3 "$HERE/check_report.py" out.html "$name" requested,allocated,committed,resident,rss || fail "out.html"
has out.html 'x&lt;y&amp;z&quot;q&#39;'
lacks out.html 'x<y&z'
no_leftovers
echo "ok: run with --report out.html and --json"

# ---- the SVG report, --fast, and the user's TESSERA_CONF passed on ----
expect_rc 0 svg env TESSERA_CONF=decay_ms:0 "$TOOL" run --fast --interval 50 --report out.svg -- "$PROG" --quick
has svg.err '^  requested +[0-9.]+ [KMG]?i?B, peak [0-9.]+ [KMG]?i?B \(not exact: small blocks count at their size class \(--fast\)\)$'
lacks svg.err 'tessera: (warning|error)'
python3 "$HERE/check_report.py" out.svg "$(basename "$PROG") --quick" requested,allocated,committed,resident,rss || fail "out.svg"
no_leftovers
echo "ok: run with --report out.svg --fast"

# ---- glibc: no preload, RSS only ----
expect_rc 0 glibc "$TOOL" run --allocator glibc --interval 50 --report glibc.html -- "$PROG" --quick
has glibc.err '^  allocator +glibc \(no preload\): RSS only$' '^  RSS +peak [0-9.]+ MiB, mean [0-9.]+ MiB, final'
lacks glibc.err '^  (ledger|requested|committed)'
python3 "$HERE/check_report.py" glibc.html "$(basename "$PROG") --quick" rss || fail "glibc.html"
# another library preloaded instead (the same one under another name): RSS only as well
cp -L "$(dirname "$TOOL")/libtessera.so" other.so
expect_rc 0 other "$TOOL" run --allocator ./other.so --report other.svg -- "$PROG" --quick
has other.err "^  allocator +$WORK/other\\.so \\(preloaded\\): RSS only\$"
python3 "$HERE/check_report.py" other.svg "$(basename "$PROG")" rss || fail "other.svg"
expect_rc 125 noreport "$TOOL" run --allocator glibc --report "$WORK/no/such/dir/r.svg" -- true
has noreport.err "^tessera: --report $WORK/no/such/dir/r\\.svg: cannot create it: No such file or directory\$"
expect_rc 125 nolib "$TOOL" run --allocator ./missing.so -- true
has nolib.err 'missing\.so: no such library'
echo "ok: --allocator glibc and PATH.so"

# ---- tags, many classes and a broken line, from a stand-in library ----
if [ -n "${TS_FAKELEDGER:-}" ]; then
  expect_rc 0 fake env TESSERA_LIB="$TS_FAKELEDGER" "$TOOL" run --interval 50 --report fake.html -- sleep 0.3
  has fake.err '^  ledger +pid [0-9]+: final snapshot at [0-9.]+ s \(2 snapshots\); no other process' \
    '^  requested +58\.6 KiB, peak 87\.9 KiB \(exact\)$' \
    '^  committed +73\.2 KiB$' \
    '^  fragmentation +1\.250 \(committed / requested\)$' \
    '^  beyond requested +14\.6 KiB: rounding 6\.7%, cached 13\.3%, slab_free 20\.0%, dirty 26\.7%, metadata 33\.3%$' \
    '^  warning +1 snapshot line did not decode: line 2, column [0-9]+: ' \
    '^  top tags by requested bytes:$'
  classes=$(sed -n '/top size classes/,/top tags/p' fake.err | awk '$1 ~ /^[0-9]+$/ {print $1}' | tr '\n' ' ')
  [ "$classes" = "32 96 64 112 48 " ] || fail "top classes by slab bytes: '$classes', expected '32 96 64 112 48 '"
  tags=$(sed -n '/top tags/,$p' fake.err | tail -n +3 | awk '{print $NF}' | tr '\n' ' ')
  [ "$tags" = "sessions <script>alert(1)</script> café index log " ] || fail "top tags: '$tags'"
  python3 "$HERE/check_report.py" fake.html "sleep 0.3" requested,allocated,committed,resident,rss || fail "fake.html"
  has fake.html '<table id="tags">' '<td>&lt;script&gt;alert\(1\)&lt;/script&gt;</td>' '<td>café</td>'
  lacks fake.html '<script>alert'
  expect_rc 1 fake_stats "$TOOL" stats fake.html
  no_leftovers
  echo "ok: tags, top classes and a broken line (fake library)"
else
  echo "note: TS_FAKELEDGER is not set: the summary's tags are not checked"
fi

# ---- tessera stats ----
expect_rc 0 stats "$TOOL" stats out.jsonl
has stats.out '^tessera [0-9.]+ memory ledger, pid [0-9]+, .* \(final snapshot, stats version [0-9]+\)$' \
  '^  part +bytes +MiB +share$' '^  requested +[0-9]+ +[0-9.]+ +[0-9.]+%' '^  committed +[0-9]+ +[0-9.]+ +100\.0%' \
  '^  fragmentation: committed/requested' '^  calls: [0-9]+ blocks allocated' '^size classes in use:$' '^arenas \(MiB\):$'
lacks stats.out 'the parts add up'
# the same snapshot as one pretty-printed object, and on standard input
tail -n 1 out.jsonl | python3 -c 'import json, sys; json.dump(json.load(sys.stdin), sys.stdout, indent=2)' >one.json
expect_rc 0 stats_one "$TOOL" stats one.json
cmp -s stats.out stats_one.out || fail "stats of one.json differs from stats of out.jsonl"
expect_rc 0 stats_stdin sh -c "\"\$0\" stats - <out.jsonl" "$TOOL"
cmp -s stats.out stats_stdin.out || fail "stats of standard input differs"
# a periodic snapshot (no arenas), with tags and a field from the future
python3 - out.jsonl >tags.json <<'EOF'
import json, sys
snap = json.loads(open(sys.argv[1]).read().splitlines()[0])
snap["tags"] = [{"name": "cache", "requested_bytes": 3 << 20, "peak_bytes": 4 << 20, "allocations": 10},
                {"name": "sessions\u00e9", "requested_bytes": 5 << 20, "peak_bytes": 6 << 20, "allocations": 20}]
snap["from_the_future"] = {"x": [1, 2, {"y": None}]}
print(json.dumps(snap))
EOF
expect_rc 0 stats_tags "$TOOL" stats tags.json
has stats_tags.out '\(periodic snapshot' '^\(no arenas in this snapshot' '^tags by requested bytes:$'
[ "$(grep -A3 '^tags by' stats_tags.out | tail -n 2 | awk '{print $NF}' | tr '\n' ' ')" = "sessionsé cache " ] \
  || fail "tags not sorted by requested bytes: $(grep -A3 '^tags by' stats_tags.out)"
# a version 1 snapshot, whose classes have no foreign / hosted_bytes: read as 0
python3 - out.jsonl >v1.json <<'EOF'
import json, sys
snap = json.loads(open(sys.argv[1]).read().splitlines()[-1])
snap["stats_version"] = 1
for c in snap.get("classes", []):
    c.pop("foreign"), c.pop("hosted_bytes")
print(json.dumps(snap))
EOF
expect_rc 0 stats_v1 "$TOOL" stats v1.json
has stats_v1.out '\(final snapshot, stats version 1\)$' '^size classes in use:$'
tail -n 1 out.jsonl | sed 's/"foreign":[0-9]*/"foreign":-1/' >foreign.json
expect_rc 1 foreign "$TOOL" stats foreign.json
has foreign.err 'foreign\.json: line 1: classes\[0\]: field "foreign" is a number out of range or with a sign'
# bad files: status 1 and a message naming the file and the fault
printf '{"tessera": "0.1.0", "requested_bytes": }\n' >bad.json
expect_rc 1 bad "$TOOL" stats bad.json
has bad.err "^tessera stats: bad\\.json: line 1, column 41: expected a value, found '}'$"
expect_rc 1 missing "$TOOL" stats no-such-file.json
has missing.err '^tessera stats: no-such-file\.json: cannot open: No such file or directory$'
: >empty.json
expect_rc 1 empty "$TOOL" stats empty.json
has empty.err '^tessera stats: empty\.json: empty file'
echo '[1, 2]' >array.json
expect_rc 1 array "$TOOL" stats array.json
has array.err '^tessera stats: array\.json: line 1: expected a JSON object \(a tessera snapshot\), found an array$'
echo '{"hello": "world"}' >other.json
expect_rc 1 notsnap "$TOOL" stats other.json
has notsnap.err 'other\.json: line 1: not a tessera snapshot'
tail -n 1 out.jsonl | sed 's/"requested_bytes":[0-9]*/"requested_bytes":"many"/' >typed.json
expect_rc 1 typed "$TOOL" stats typed.json
has typed.err 'typed\.json: line 1: field "requested_bytes" is a string, expected an unsigned integer'
{ head -n 1 out.jsonl; tail -n 1 out.jsonl | head -c 300; echo; } >cut.jsonl
expect_rc 1 cut "$TOOL" stats cut.jsonl
has cut.err '^tessera stats: cut\.jsonl: line 2, column [0-9]+: '
expect_rc 1 dir "$TOOL" stats "$WORK"
has dir.err 'is a directory'
echo "ok: tessera stats"

# ---- exit statuses and signals pass through ----
expect_rc 3 exit3 "$TOOL" run -- sh -c 'exit 3'
has exit3.err '^  exit +status 3$'
# a program killed before its first snapshot: the summary says so, and
# the tool notices the end at once even with a long interval
start=$(date +%s)
expect_rc 137 nosnap "$TOOL" run --interval 60000 --json nosnap.jsonl -- sh -c 'kill -KILL $$'
[ $(($(date +%s) - start)) -lt 10 ] || fail "the tool took the whole interval to notice the end"
has nosnap.err '^  ledger +no snapshot from pid [0-9]+: ' 'nosnap\.jsonl is empty'
[ -f nosnap.jsonl ] && [ ! -s nosnap.jsonl ] || fail "nosnap.jsonl: not an empty file"
expect_rc 143 killed "$TOOL" run --allocator glibc -- sh -c 'kill -TERM $$'
has killed.err '^  exit +killed by signal 15 \(Terminated\): exit code 143$'
expect_rc 127 notfound "$TOOL" run -- "$WORK/no-such-program"
has notfound.err "cannot run $WORK/no-such-program: No such file or directory"
expect_rc 126 notexec "$TOOL" run -- "$WORK/one.json"
has notexec.err 'cannot run .*one\.json: Permission denied'
# SIGTERM to the tool reaches the program; the tool ends with it
start=$(date +%s)
"$TOOL" run --interval 20 -- sleep 30 >term.out 2>term.err &
tool_pid=$!
for _ in $(seq 50); do [ -n "$(cat "/proc/$tool_pid/task/$tool_pid/children" 2>/dev/null)" ] && break; sleep 0.1; done
sleep 0.2
kill -TERM "$tool_pid"
wait "$tool_pid"
rc=$?
[ "$rc" = 143 ] || { cat term.err >&2; fail "tool got SIGTERM: exit status $rc, expected 143"; }
[ $(($(date +%s) - start)) -lt 15 ] || fail "the program outlived the forwarded SIGTERM"
has term.err '^  exit +killed by signal 15'
no_leftovers
echo "ok: exit statuses and signals"

# ---- processes the program starts leave snapshots of their own ----
expect_rc 0 children "$TOOL" run --interval 50 -- sh -c "\"\$0\" --quick && \"\$0\" --quick" "$PROG"
has children.err 'ledger +.*2 other processes \(forked or started by it\) left snapshots; largest: pid [0-9]+, requested peak [0-9.]+ MiB'
no_leftovers
echo "ok: child processes"

# ---- finding the library ----
expect_rc 125 badlib env TESSERA_LIB="$WORK/nope/libtessera.so" "$TOOL" run -- true
has badlib.err "TESSERA_LIB=$WORK/nope/libtessera.so: no such library"
mkdir -p inst/bin inst/lib bare/bin
cp "$TOOL" inst/bin/tessera && cp "$TOOL" bare/bin/tessera
cp -L "$(dirname "$TOOL")/libtessera.so" inst/lib/libtessera.so
expect_rc 0 installed inst/bin/tessera run -- "$PROG" --quick
has installed.err "^  allocator +tessera \\($WORK/inst/lib/libtessera\\.so\\)\$" '^  ledger +pid [0-9]+: final snapshot'
expect_rc 125 nowhere bare/bin/tessera run -- true
has nowhere.err '^tessera: cannot find libtessera\.so; tried:$' "^  $WORK/bare/bin/libtessera\\.so\$" \
  "^  $WORK/bare/bin/\\.\\./lib/libtessera\\.so\$" '^set TESSERA_LIB'
echo "ok: finding the library"
echo "tools/run: ok"
