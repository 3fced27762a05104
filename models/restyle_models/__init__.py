"""Restyle model pipeline: render paired data, train the streaming generator and the style
classifier, export them to ONNX (int8), evaluate, and write the model pack the plugin loads.

Each step is a module with its own `main()` (``python -m restyle_models.<step>``); each writes
what the next one reads, under ``models/data/`` (audio, features, checkpoints), ``models/runs/``
(TensorBoard) and ``models/packs/<name>/`` (the shipped pack).
"""
