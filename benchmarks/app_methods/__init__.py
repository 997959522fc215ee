"""Methods of benchmarks/apps.py, written as Toto 1.0.12 applications write them."""
