"""Bayesian uncertainty: MC dropout, scores from samples, aleatoric losses.

Monte Carlo samples have one layout throughout mumo: **(T, B, ...)** — the sample axis first, then
the batch. Probabilities from T passes over B examples with C classes are (T, B, C).
"""
