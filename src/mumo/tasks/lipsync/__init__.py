"""The lip-sync generator (Wav2Lip-style, reference §6.2-6.5): speech to lips on talking faces, trained as L1 alone,
with LipGAN's jointly trained discriminator, with the frozen lip-sync expert, or with the expert and the
visual-quality discriminator; config, training windows, training and loading a run, and evaluation scored by an
independent expert (evaluate.py)."""
