"""Write docs/phantom_montage.png: one labelled phantom image per task (OpenCV only).

Usage: python benchmarks/make_phantom_montage.py [--out docs/phantom_montage.png] [--seed 0] [--size 256] [--cols 6]
"""
from __future__ import annotations

import argparse
from pathlib import Path

from usedge.data.phantom import write_montage


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "docs" / "phantom_montage.png")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--cols", type=int, default=6)
    args = ap.parse_args()
    path = write_montage(args.out, seed=args.seed, size=args.size, cols=args.cols)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
