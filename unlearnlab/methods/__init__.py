"""Unlearning methods, one module per family, all with one contract (see :mod:`unlearnlab.methods.base`)."""
