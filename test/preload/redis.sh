#!/bin/bash
# SPDX-License-Identifier: MIT
# preload/redis: redis-server (Debian's, linked against jemalloc) runs with
# tessera preloaded on a loopback port; redis-benchmark drives it, then
# redis-cli stores and reads back values whose replies are checked, among
# them values whose sizes shift, which must land in mixed slabs.  The
# server must still answer PING at the end and shut down cleanly.
# Only 127.0.0.1 is used; every wait and every command is bounded.
# Usage: redis.sh LIBTESSERA
. "$(dirname "$0")/common.sh"
need redis-server
need redis-cli
need redis-benchmark
check_loads

HOST=127.0.0.1
PORT=
PID=

stop_server() {
  [ -n "$PID" ] || return 0
  if kill -0 "$PID" 2>/dev/null; then
    kill -TERM "$PID" 2>/dev/null
    for _ in $(seq 100); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$PID" 2>/dev/null
  fi
  PID=
}
ts_cleanup_hooks+=(stop_server)

port_busy() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

cli() { timeout 60 redis-cli -h "$HOST" -p "$PORT" "$@"; }

show_log() { [ -f "$WORK/redis.log" ] && tail -n 40 "$WORK/redis.log" >&2; }

# expect WANT CMD...: the reply of one redis-cli command must be WANT.
expect() {
  local want=$1 got
  shift
  got=$(cli "$@" 2>&1)
  [ "$got" = "$want" ] || { show_log; fail "redis-cli $*: got '$got', want '$want'"; }
}

# Start the server, choosing another port if this one turns out taken.
started=0
for attempt in 1 2 3 4 5 6 7 8; do
  PORT=$((20000 + RANDOM % 20001))
  port_busy "$PORT" && continue
  : >"$WORK/redis.log"
  TESSERA_CONF="${TESSERA_CONF:+$TESSERA_CONF,}stats_interval_ms:200,stats_file:$WORK/snap.%p.jsonl" \
    LD_PRELOAD=$TS_LIB redis-server --port "$PORT" --bind "$HOST" --protected-mode yes \
    --save "" --appendonly no --daemonize no --dir "$WORK" --logfile "$WORK/redis.log" \
    --databases 2 &
  PID=$!
  for _ in $(seq 100); do
    kill -0 "$PID" 2>/dev/null || break
    [ "$(timeout 5 redis-cli -h "$HOST" -p "$PORT" PING 2>/dev/null)" = PONG ] && { started=1; break; }
    sleep 0.1
  done
  [ $started = 1 ] && break
  if grep -q -i 'address already in use' "$WORK/redis.log"; then
    stop_server
    continue
  fi
  show_log
  fail "redis-server did not start (attempt $attempt, port $PORT)"
done
[ $started = 1 ] || fail "no free port found for redis-server"
echo "redis-server pid $PID on $HOST:$PORT"

grep -q libtessera "/proc/$PID/maps" || fail "libtessera is not mapped into redis-server"

# ---- benchmark traffic ----
bench() {
  local out=$WORK/bench.$RANDOM
  timeout 300 redis-benchmark -h "$HOST" -p "$PORT" -q "$@" >"$out" 2>&1 \
    || { cat "$out" >&2; show_log; fail "redis-benchmark $* failed"; }
  kill -0 "$PID" 2>/dev/null || { show_log; fail "redis-server died during redis-benchmark $*"; }
  tr '\r' '\n' <"$out" | grep 'requests per second' | sed 's/^/  /'
}
TESTS=set,get,incr,lpush,lpop,sadd,hset
bench -n 20000 -c 20 -r 10000 -d 16 -t "$TESTS"
bench -n 20000 -c 20 -r 10000 -d 1000 -t "$TESTS"
bench -n 5000 -c 10 -r 2000 -d 60000 -t set,get,lpush,lpop,hset
bench -n 50000 -c 10 -r 50000 -d 100 -P 16 -t set,get,lpush,lpop
bench -n 400 -c 4 -r 50 -d 1000000 -t set,get

# ---- values checked through redis-cli ----
expect OK FLUSHALL
expect OK SET greeting "hello, tessera"
expect "hello, tessera" GET greeting
expect 1 EXISTS greeting

# A big value (about 5 MB), written from stdin and read back byte for byte.
seq 1 800000 | tr -d '\n' >"$WORK/big.txt"
bigsize=$(wc -c <"$WORK/big.txt")
cli -x SET big <"$WORK/big.txt" >"$WORK/set-big.out" 2>&1
[ "$(cat "$WORK/set-big.out")" = OK ] || fail "SET big: $(cat "$WORK/set-big.out")"
expect "$bigsize" STRLEN big
cli --raw GET big >"$WORK/got-big.txt" || fail "GET big failed"
cmp -s <(cat "$WORK/big.txt"; echo) "$WORK/got-big.txt" || fail "GET big returned different bytes"
usage=$(cli MEMORY USAGE big)
[ "$usage" -ge "$bigsize" ] 2>/dev/null || fail "MEMORY USAGE big = '$usage', below $bigsize"

# A string grown by APPEND, one command per line on redis-cli's stdin.
chunk=$(printf '%01000d' 7)
for _ in $(seq 3000); do echo "APPEND grow $chunk"; done >"$WORK/append.txt"
timeout 120 redis-cli -h "$HOST" -p "$PORT" <"$WORK/append.txt" | tail -n 1 >"$WORK/append.out"
[ "$(cat "$WORK/append.out")" = 3000000 ] || fail "APPEND: last reply $(cat "$WORK/append.out")"
expect 3000000 STRLEN grow
expect 0000000007 GETRANGE grow 2999990 2999999

# 50,000 keys through the raw protocol (--pipe), then half deleted.
# resp CMD KEY COUNT [same]: COUNT commands "CMD KEY:i value-i-000..." in the
# raw protocol for --pipe ("CMD KEY value-i-..." when the 4th argument is
# "same"); DEL takes no value.
resp() {
  awk -v cmd="$1" -v pre="$2" -v n="$3" -v same="${4:-}" 'BEGIN {
    for (i = 0; i < n; i++) {
      k = (same == "same") ? pre : pre ":" i
      v = "value-" i "-" sprintf("%0" (i % 200) "d", 0)
      if (cmd == "DEL") printf "*2\r\n$3\r\nDEL\r\n$%d\r\n%s\r\n", length(k), k
      else printf "*3\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", length(cmd), cmd, length(k), k, length(v), v
    } }'
}
pipe() {  # pipe NAME REPLIES: feeds stdin to redis-cli --pipe, checks the summary
  timeout 120 redis-cli -h "$HOST" -p "$PORT" --pipe >"$WORK/pipe-$1.out" 2>&1
  grep -q "errors: 0, replies: $2\$" "$WORK/pipe-$1.out" || { show_log; fail "--pipe $1: $(cat "$WORK/pipe-$1.out")"; }
}

# 50,000 keys through the raw protocol (--pipe), then every other one deleted.
resp SET key 50000 | pipe set 50000
expect 50003 DBSIZE
expect "value-12345-$(printf '%0145d' 0)" GET key:12345
awk 'BEGIN { for (i = 0; i < 50000; i += 2) { k = "key:" i; printf "*2\r\n$3\r\nDEL\r\n$%d\r\n%s\r\n", length(k), k } }' \
  | pipe del 25000
expect 25003 DBSIZE
expect "" GET key:12344
expect "value-12345-$(printf '%0145d' 0)" GET key:12345

# Lists, hashes, sets and sorted sets.
resp RPUSH biglist 20000 same | pipe rpush 20000
expect 20000 LLEN biglist
expect "value-19999-$(printf '%0199d' 0)" LINDEX biglist -1
expect 3 HSET h f1 v1 f2 v2 f3 "$(printf '%05000d' 3)"
expect 5000 HSTRLEN h f3
expect 3 SADD s a b c
expect 2 SREM s a c
expect b SMEMBERS s
expect 3 ZADD z 1 one 2 two 3 three
expect "$(printf 'three\ntwo\none')" ZREVRANGE z 0 -1
expect 1 DEL biglist
expect 25006 DBSIZE

# Values whose sizes shift, as in bench/frag_redis.c: 200,000 keys of 100
# to 400 bytes, every other one deleted, then 60,000 keys of 500 to 1000
# bytes, which tessera places in the holes of other size classes' slabs
# (mixed slabs; its snapshots must show some).  shift_resp PREFIX N LO HI:
# SET PREFIX:i to "PREFIX-i-000..." of LO + (i * 7919) % (HI - LO + 1) bytes.
shift_resp() {
  awk -v pre="$1" -v n="$2" -v lo="$3" -v hi="$4" 'BEGIN {
    for (i = 0; i < n; i++) {
      k = pre ":" i
      len = lo + (i * 7919) % (hi - lo + 1)
      v = sprintf("%s-%d-%0" (len - length(pre) - length(i) - 2) "d", pre, i, 0)
      printf "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", length(k), k, length(v), v
    } }'
}
expect OK FLUSHALL # after the checks above
shift_resp s 200000 100 400 | pipe shift-fill 200000
awk 'BEGIN { for (i = 0; i < 200000; i += 2) { k = "s:" i; printf "*2\r\n$3\r\nDEL\r\n$%d\r\n%s\r\n", length(k), k } }' \
  | pipe shift-del 100000
shift_resp m 60000 500 1000 | pipe shift-refill 60000
expect 160000 DBSIZE
expect $((500 + 12345 * 7919 % 501)) STRLEN m:12345
expect "m-12345-$(printf '%0*d' $((500 + 12345 * 7919 % 501 - 8)) 0)" GET m:12345
expect $((100 + 12345 * 7919 % 301)) STRLEN s:12345
expect "" GET s:12344
sleep 0.5 # a snapshot after the refill
if command -v python3 >/dev/null 2>&1; then
  python3 - "$WORK"/snap.*.jsonl <<'PYEOF' || fail "redis-server placed no value in another class's slab"
import json, sys
most = 0
for path in sys.argv[1:]:
    for line in open(path):
        most = max(most, sum(c["foreign"] for c in json.loads(line).get("classes", [])))
print("  most objects placed in other classes' slabs at once:", most)
sys.exit(0 if most > 0 else 1)
PYEOF
fi

# Still alive, then a clean shutdown.
expect PONG PING
kill -0 "$PID" 2>/dev/null || fail "redis-server is gone"
cli SHUTDOWN NOSAVE >/dev/null 2>&1
status=
for _ in $(seq 200); do
  if ! kill -0 "$PID" 2>/dev/null; then wait "$PID"; status=$?; break; fi
  sleep 0.1
done
[ -n "$status" ] || { show_log; fail "redis-server did not exit after SHUTDOWN"; }
PID=
[ "$status" = 0 ] || { show_log; fail "redis-server exited with status $status"; }
if grep -E -i 'crashed by signal|guru meditation|tessera:|assertion' "$WORK/redis.log"; then
  fail "redis-server's log reports a problem"
fi
grep -q -i 'ready to exit' "$WORK/redis.log" || { show_log; fail "redis-server did not log a clean exit"; }
echo "preload/redis: ok"
