"""Loading trained runs and answering questions."""
