"""cifarnb: reproduce, rerun and extend a CIFAR-10 training report.

Layers flow one way: ``data`` -> ``loaders`` -> ``models`` -> ``train`` -> ``results`` -> ``plots`` / notebooks.
"""

__version__ = "0.1.0"
