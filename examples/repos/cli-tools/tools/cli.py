import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Count lines in files.")
    parser.add_argument("paths", nargs="+", help="files to count")
    parser.add_argument("--blank", action="store_true", help="count blank lines too")
    return parser


def count_lines(path: str, blank: bool) -> int:
    with open(path, encoding="utf-8") as f:
        return sum(1 for line in f if blank or line.strip())


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    for path in args.paths:
        print(f"{count_lines(path, args.blank):8d} {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
