"""Data sets, tokenisation and image loading."""
