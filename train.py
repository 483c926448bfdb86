"""Thin entry point: `python train.py --config configs/small.json` == `tf-distill train ...`."""

import sys

from tf_distill.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
