"""``python -m monitor.cli``: the ``monitor`` command."""

from . import main

main()
