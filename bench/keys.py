"""RSA-2048 key + CSR per second with adapters.crypto.keys, against `openssl genrsa 2048` in the same run.

    python bench/keys.py [--n N] [--json]

The limit is measured, not assumed: ``ratio`` = ours / openssl's rate on this machine now.
openssl's rate includes starting a process, as a shell script calling it would pay; ours
includes signing the CSR, which openssl's does not. RSA key generation time varies a lot
from key to key (prime search), so N of a few dozen keeps the noise down.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

from adapters.base import DistinguishedName
from adapters.crypto.keys import generate_key, make_csr

DN = DistinguishedName(common_name="www.example.jp", organization="Example Trading K.K.",
                       locality="Shinjuku-ku", prefecture="Tokyo", country="JP", unit="Web")
NAMES = ("www.example.jp", "example.jp")


def ours_per_second(n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        make_csr(generate_key("rsa2048"), DN, NAMES)
    return n / (time.perf_counter() - start)


def openssl_per_second(n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        subprocess.run(["openssl", "genrsa", "2048"], check=True, capture_output=True)
    return n / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=60, help="keys per side (default 60, about 15 s)")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args(argv)
    if args.n < 1:
        parser.error("--n must be at least 1")

    ours_per_second(1)  # warm up imports and the backend
    ours = ours_per_second(args.n)
    openssl = openssl_per_second(args.n)
    ratio = ours / openssl
    print(f"RSA-2048 key+CSR: adapters.crypto.keys {ours:.1f}/s, openssl genrsa {openssl:.1f}/s, "
          f"ratio {ratio:.2f} (n={args.n})")
    if args.json:
        print(json.dumps({"keys_per_s": round(ours, 2), "openssl_per_s": round(openssl, 2),
                          "ratio": round(ratio, 3), "n": args.n}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
