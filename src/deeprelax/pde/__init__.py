"""PDE and SDE lab: pure numpy/scipy (no torch, no matplotlib).

Each module implements one object of the theory; its docstring states the equation it solves.
"""
