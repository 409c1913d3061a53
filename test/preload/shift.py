# SPDX-License-Identifier: MIT
# shift.py: a key-value table whose value sizes shift, as in
# bench/frag_redis.c: fill with values of 16..512 bytes, delete a random
# half, refill with values of 32..1024 bytes, delete half again, refill
# with 16..64 bytes.  Prints a digest of the table after each step, so
# that runs with and without tessera can be compared line by line.
# Run with PYTHONMALLOC=malloc so that every value goes through malloc.
import hashlib
import random

rng = random.Random(20261125)
table = {}
next_key = 0


def value(size):
    return rng.getrandbits(8 * size).to_bytes(size, "little")


def fill(count, lo, hi):
    global next_key
    for _ in range(count):
        table[next_key] = value(rng.randint(lo, hi))
        next_key += 1


def delete_half():
    for k in [k for k in table if rng.random() < 0.5]:
        del table[k]


def digest(step):
    h = hashlib.sha256()
    for k in sorted(table):
        h.update(k.to_bytes(8, "little"))
        h.update(table[k])
    print(step, len(table), sum(len(v) for v in table.values()), h.hexdigest())


fill(120000, 16, 512)
digest("filled")
delete_half()
digest("deleted")
fill(30000, 32, 1024)
digest("refilled_larger")
delete_half()
digest("deleted2")
fill(200000, 16, 64)
digest("refilled_small")
print("done")
