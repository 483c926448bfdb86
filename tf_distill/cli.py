"""The `tf-distill` command line (also `python -m tf_distill` and `python train.py`)."""

import argparse
import sys

from tf_distill.version import __version__


def build_parser():
    parser = argparse.ArgumentParser(
        prog="tf-distill",
        description="Teacher-student distillation of Transformers with Keras 3 / TensorFlow.",
    )
    parser.add_argument("--version", action="version", version=f"tf_distill {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    info = sub.add_parser("info", help="print the versions of the stack tf_distill runs on")
    info.set_defaults(handler=_info)
    return parser


def _info(args):
    import keras
    import tensorflow as tf

    print(f"tf_distill {__version__}")
    print(f"tensorflow {tf.__version__}")
    print(f"keras {keras.__version__} (backend: {keras.backend.backend()})")
    return 0


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
