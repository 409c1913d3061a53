# SPDX-License-Identifier: MIT
# workload.py: an allocation-heavy Python program with deterministic output,
# run with and without tessera preloaded (preload/python.sh).  Nothing here
# depends on hash order, addresses or time.
import collections
import concurrent.futures
import hashlib
import json
import re
import sys


def digest(obj):
    return hashlib.sha256(repr(obj).encode()).hexdigest()[:16]


def lcg(seed):
    x = seed
    while True:
        x = (x * 6364136223846793005 + 1442695040888963407) % (1 << 64)
        yield x


def dicts_and_lists():
    g = lcg(1)
    d = {}
    for i in range(200_000):
        k = "k%06d-%s" % (next(g) % 150_000, "x" * (i % 17))
        d.setdefault(k, []).append(i)
    big = [v for v in d.values() if len(v) > 2]
    print("dict entries", len(d), "multi", len(big), digest(sorted(d)[:1000]))
    for k in list(d)[::3]:
        del d[k]
    print("after delete", len(d), sum(len(v) for v in d.values()))
    lists = [[j * i for j in range(i % 300)] for i in range(3000)]
    print("lists", sum(map(len, lists)), sum(sum(x) for x in lists) % 1_000_003)


def strings():
    parts = []
    for i in range(100_000):
        parts.append("%d:%s" % (i, hex(i * 2654435761 % (1 << 32))))
    s = ",".join(parts)
    print("joined", len(s), digest(s[-200:]))
    words = s.split(",")
    c = collections.Counter(w[-1] for w in words)
    print("last chars", sorted(c.items()))
    acc = ""
    for i in range(20_000):
        acc += chr(97 + i % 26)
        if len(acc) > 5000:
            acc = acc[2500:]
    print("acc", len(acc), acc[:20])
    text = " ".join(words[:20_000])
    found = re.findall(r"\b(\d+):0x([0-9a-f]{6,8})\b", text)
    print("regex", len(found), found[:3])
    print("upper", digest(text.upper()), "replace", len(text.replace("0x", "0X-")))
    b = bytearray()
    for i in range(300_000):
        b += bytes((i % 251,))
    print("bytearray", len(b), hashlib.sha256(b).hexdigest()[:16])


def big_ints():
    if hasattr(sys, "set_int_max_str_digits"):
        sys.set_int_max_str_digits(0)
    f = 1
    for i in range(2, 3001):
        f *= i
    print("3000! digits", len(str(f)), str(f)[:30], str(f).rstrip("0")[-20:])
    p = pow(3, 20_000) - pow(7, 9_000)
    print("pow", p.bit_length(), p % 1_000_000_007)
    fib = [0, 1]
    for _ in range(5000):
        fib.append(fib[-1] + fib[-2])
    print("fib5000", len(str(fib[-1])), fib[-1] % 999_983)
    print("divmod", divmod(p, f + 1)[1] % (10**12 + 39), divmod(p, f + 1)[0].bit_length())


def json_roundtrip():
    g = lcg(7)
    data = []
    for i in range(20_000):
        r = next(g)
        data.append({
            "id": i,
            "name": "item-%d" % (r % 100_000),
            "tags": ["t%d" % ((r >> s) % 50) for s in range(0, 40, 8)],
            "score": (r % 10_000) / 100.0,
            "nested": {"a": [r % 7, r % 11, r % 13], "b": None, "c": i % 2 == 0},
        })
    text = json.dumps(data, sort_keys=True)
    back = json.loads(text)
    assert back == data
    print("json", len(text), digest(text[:5000]), digest(back[-1]))
    pretty = json.dumps(back[:2000], indent=2, sort_keys=True)
    print("pretty lines", pretty.count("\n"))


def sorting():
    g = lcg(99)
    rows = [(next(g) % 1000, "r%d" % (next(g) % 50_000), i) for i in range(200_000)]
    rows.sort()
    print("sorted", rows[0], rows[-1], digest(rows[::10_000]))
    by_name = sorted(rows, key=lambda r: (r[1], -r[2]))
    print("by name", by_name[0], by_name[-1])
    groups = collections.defaultdict(list)
    for a, name, i in rows:
        groups[a].append(i)
    print("groups", len(groups), max(len(v) for v in groups.values()))
    s1 = {r[1] for r in rows[:100_000]}
    s2 = {r[1] for r in rows[100_000:]}
    print("sets", len(s1 & s2), len(s1 | s2), len(s1 ^ s2))


def task(n):
    g = lcg(n)
    items = sorted("%x" % (next(g) % 1_000_000) for _ in range(30_000))
    return n, len(set(items)), digest(items[::1000])


def threads():
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as ex:
        for r in ex.map(task, range(12)):
            print("thread", *r)


def objects():
    class Node:
        __slots__ = ("v", "kids")

        def __init__(self, v):
            self.v = v
            self.kids = []

    def build(depth, v):
        n = Node(v)
        if depth:
            n.kids = [build(depth - 1, v * 3 + k) for k in range(3)]
        return n

    def total(n):
        return n.v + sum(total(k) for k in n.kids)

    for round_ in range(3):
        root = build(9, round_)
        print("tree", round_, total(root) % 1_000_000_007)
        del root


for step in (dicts_and_lists, strings, big_ints, json_roundtrip, sorting, threads, objects):
    step()
print("done")
