"""The WAIIDE Hub benchmark (`make bench`, or `python bench/run.py --help`); see bench/run.py."""
