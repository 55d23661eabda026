"""mumo scenes: a procedural CLEVR-like world of places and objects, with scene graphs, captions, tags and
questions from a functional grammar with an executor and a parser (``mumo data scenes``)."""
