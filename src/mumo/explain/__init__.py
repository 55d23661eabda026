"""Explanation methods and their visualisation."""
