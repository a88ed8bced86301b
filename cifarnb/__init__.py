"""cifarnb: reproduce, rerun and extend a CIFAR-10 training report.

A reusable library, which knows nothing of the report, and the report's study on top of it (``cifarnb.study``).
Layers flow one way (a module imports only from layers to its left):
``data``, ``device``, ``atomic``, ``names``, ``interrupt`` -> ``loaders``, ``models`` -> ``train`` ->
``run_schema``, ``results``, ``archive``, ``landscape``, ``feature_maps`` -> ``plots`` -> ``study`` -> ``cli``.
``names`` holds the names a config chooses among without importing torch, so ``cifarnb --help`` needs none.
"""

__version__ = "0.1.0"
