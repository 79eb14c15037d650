#!/usr/bin/env python3
"""The benchmark workloads, generated in the repository so that a clone alone can run bench/*.sh.

Same algorithm and same bytes as the project's shared generator (../shared/bench/workloads.py):
Python's Mersenne Twister (random.Random) seeded 1..4, one seed per workload, drawn in the
same order. bench/test_workloads.sh (meson test bench_workloads) compares the two when the shared one is present.

  W1        64 MiB of random bytes (incompressible)                            seed 1
  W2        64 MiB memory image: 16384 pages of 4 KiB, half of them (a random
            sample) zero, the others random, drawn page by page in order       seed 2
  W3        W2 with 1% of its pages (164, a random sample) rewritten, drawn in
            ascending page order; W3.dirty lists those page numbers            seed 3
  W4        1000 checkpoints of 4 KiB, random: W4/ckpt0000 .., and W4.cat
            their concatenation                                                seed 4

usage: workloads.py OUTDIR [--scale N]   (--scale divides every size by N, for quick runs)
"""
import argparse
import os
import random

PAGE_SIZE = 4096
PAGES = 16384  # 64 MiB
W4_COUNT = 1000


def write_w1(path, npages):
    rng = random.Random(1)
    with open(path, "wb") as f:
        f.write(rng.randbytes(npages * PAGE_SIZE))


def memory_image(npages):
    """W2's pages: the zero ones are chosen first, then each other page is drawn in order."""
    rng = random.Random(2)
    zero_pages = frozenset(rng.sample(range(npages), npages // 2))
    blank = bytes(PAGE_SIZE)
    return [blank if n in zero_pages else rng.randbytes(PAGE_SIZE) for n in range(npages)]


def rewrite_one_percent(pages):
    """W3 from W2: 1% of the pages (at least one) rewritten; returns the sorted page numbers."""
    rng = random.Random(3)
    npages = len(pages)
    dirty = sorted(rng.sample(range(npages), max(1, round(npages / 100))))
    for n in dirty:
        pages[n] = rng.randbytes(PAGE_SIZE)
    return dirty


def write_w4(outdir, count):
    rng = random.Random(4)
    folder = os.path.join(outdir, "W4")
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(outdir, "W4.cat"), "wb") as cat:
        for n in range(count):
            block = rng.randbytes(PAGE_SIZE)
            with open(os.path.join(folder, "ckpt%04d" % n), "wb") as one:
                one.write(block)
            cat.write(block)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("outdir")
    parser.add_argument("--scale", type=int, default=1, help="divide every size by N")
    args = parser.parse_args()
    if args.scale < 1:
        parser.error("--scale must be at least 1")
    os.makedirs(args.outdir, exist_ok=True)
    npages = PAGES // args.scale

    write_w1(os.path.join(args.outdir, "W1"), npages)
    pages = memory_image(npages)
    with open(os.path.join(args.outdir, "W2"), "wb") as f:
        f.writelines(pages)
    dirty = rewrite_one_percent(pages)
    with open(os.path.join(args.outdir, "W3"), "wb") as f:
        f.writelines(pages)
    with open(os.path.join(args.outdir, "W3.dirty"), "w") as f:
        print(" ".join(str(n) for n in dirty), file=f)
    write_w4(args.outdir, W4_COUNT // args.scale)


if __name__ == "__main__":
    main()
