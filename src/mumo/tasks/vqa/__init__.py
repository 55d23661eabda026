"""Visual question answering: MCAN on easy-VQA, Sort-of-CLEVR and VQA v2, with uncertainty and explanations.

The modules, from the bottom up: ``data`` (data sets by name), ``loss``, ``model`` (the model a run trains and
loading it), ``accuracy``, ``train`` (the run wired to the loop); ``predictive`` (MC-dropout and ensemble
samples), ``density``, ``question_bank``, ``temperature``, ``uncertainty``, ``ensemble``; ``attention``
(attention trained with explanations), ``explain``, ``probe``; ``predictor`` (one image and question at a time).
"""
