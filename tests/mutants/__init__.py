"""Deliberately broken models and the model-level checks they must fail.

``build`` makes mutants of the shipped ONNX graphs (constant output, swapped Mn2+/Mn4+
outputs, a shifted input, a zeroed layer); ``checks`` holds the model-level checks
against ground truth that the ordinary tests run on the shipped models and
``test_mutants.py`` runs on every mutant.
"""
