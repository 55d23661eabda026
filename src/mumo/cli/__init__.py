"""The ``mumo`` command line: a thin shell over library functions."""
