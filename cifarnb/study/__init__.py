"""This report's study, built on the library around it (``cifarnb.data``, ``models``, ``train``, ...).

The settings the report's code used (``settings``), its published numbers (``reference``), the three run sizes
(``profiles``), named presets (``recipes``), one module per report section and notebook (``sections``), the
accuracy readings and verdicts they share (``reading``), the kinds of work they need (``tasks``), and the ways
to get it done: headless sweeps (``sweep``, ``estimate``, ``cluster``), the notebooks' set-up (``notebook``) and
the rendered report (``render``).

Layers flow one way: ``settings``, ``reference`` -> ``profiles`` -> ``recipes`` -> ``reading``, ``tasks`` ->
``sections`` -> ``estimate`` -> ``sweep`` -> ``cluster`` -> ``notebook``, ``render``.
"""
