"""A module that takes 0.6 s to import: tests/test_workers.py preloads it in a fresh forkserver,
whose first worker then starts only once it is imported."""

import time

time.sleep(0.6)
