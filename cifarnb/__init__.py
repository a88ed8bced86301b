"""cifarnb: reproduce, rerun and extend a CIFAR-10 training report.

A reusable library, which knows nothing of the report, and the report's study on top of it (``cifarnb.study``).
Layers flow one way (a module imports only from layers to its left):
``data``, ``device``, ``atomic`` -> ``loaders``, ``models`` -> ``train`` -> ``results``, ``archive``,
``landscape``, ``feature_maps`` -> ``plots`` -> ``study`` -> ``cli``.
"""

__version__ = "0.1.0"
