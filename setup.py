"""The one part of the package in C: salience's layout of a text (monitor/rules/_layout.c,
issue 17). Optional: where it cannot be built (no C compiler), the install goes on and
salience.py uses its own Python, which gives the same answers, only slower. Everything else
is declared in pyproject.toml."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("monitor.rules._layout", ["monitor/rules/_layout.c"], optional=True)])
