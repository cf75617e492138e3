#!/usr/bin/env python3
"""Hit ratio of a cache under maxmemory on a Zipf workload, against exact LRU.

A cache-aside client: GET a key drawn from a Zipf distribution; on a miss, SET it (as an
application would after reading its database). The requests go in pipelines of 100 GETs,
then the SETs for their misses. The first quarter of the requests warms the cache and is
not counted.

The server holds as many keys as its memory limit allows; how many depends on its
per-key memory, so each server is compared with an exact LRU simulated here (an ordered
dict) of the capacity the server held (DBSIZE at the end, the steady state). The
"vs exact" column is what sampling costs, independent of memory efficiency.

usage: hitratio.py HOST:PORT LABEL [--keys N] [--requests N] [--skew S] [--seed N]
prints one markdown row: label | keys held | hit ratio | exact LRU at that size | ratio
"""

import argparse
import bisect
import collections
import random

import redis


def zipf_sampler(n, skew, rng):
    weights = [1.0 / (i**skew) for i in range(1, n + 1)]
    total = sum(weights)
    cdf, acc = [], 0.0
    for w in weights:
        acc += w / total
        cdf.append(acc)
    # Rank r is key perm[r]: popular keys spread over the key space (and the shards).
    perm = list(range(n))
    rng.shuffle(perm)

    def draw():
        return perm[min(bisect.bisect_left(cdf, rng.random()), n - 1)]

    return draw


def exact_lru(trace, capacity, warm):
    cache = collections.OrderedDict()
    hits = 0
    for i, k in enumerate(trace):
        if k in cache:
            cache.move_to_end(k)
            if i >= warm:
                hits += 1
        else:
            cache[k] = True
            if len(cache) > capacity:
                cache.popitem(last=False)
    return hits / (len(trace) - warm)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("addr")
    ap.add_argument("label")
    ap.add_argument("--keys", type=int, default=1_000_000)
    ap.add_argument("--requests", type=int, default=2_000_000)
    ap.add_argument("--skew", type=float, default=0.99)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--value", type=int, default=100)
    a = ap.parse_args()
    host, port = a.addr.rsplit(":", 1)
    r = redis.Redis(host=host, port=int(port))
    r.flushall()
    rng = random.Random(a.seed)
    draw = zipf_sampler(a.keys, a.skew, rng)
    trace = [draw() for _ in range(a.requests)]
    warm = a.requests // 4
    value = b"v" * a.value
    hits = 0
    batch = 100
    for start in range(0, a.requests, batch):
        keys = trace[start : start + batch]
        pipe = r.pipeline(transaction=False)
        for k in keys:
            pipe.get(f"key:{k}")
        got = pipe.execute()
        pipe = r.pipeline(transaction=False)
        for i, (k, v) in enumerate(zip(keys, got)):
            if v is None:
                pipe.set(f"key:{k}", value)
            elif start + i >= warm:
                hits += 1
        pipe.execute(raise_on_error=False)
    held = r.dbsize()
    ratio = hits / (a.requests - warm)
    exact = exact_lru(trace, held, warm)
    print(f"| {a.label} | {held:,} | {ratio:.4f} | {exact:.4f} | {ratio / exact:.3f} |")


if __name__ == "__main__":
    main()
