"""Run the `pullback` command line as `python -m pullback`."""

from pullback.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
