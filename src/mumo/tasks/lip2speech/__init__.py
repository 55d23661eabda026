"""Lips to speech (Lip2Wav-style): a silent video of one speaker's face becomes that speaker's speech."""
