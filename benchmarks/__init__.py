"""Benchmarks of toto's worker connections against raw pyzmq and raw Tornado.

Run ``python -m benchmarks`` (or ``python benchmarks/run.py``) from the
checkout; ``--help`` lists the options.  Python 3 only.  Importing this
package does nothing else: the measures, the clients and the workers are
imported when they run.
"""


def main(argv=None):
    """Run the benchmarks with command line ``argv``; return the exit status."""
    from benchmarks.run import main as run_main
    return run_main(argv)
