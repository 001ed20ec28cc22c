"""unlearnlab: a hands-on course on machine unlearning, on MNIST.

Modules: ``config`` (profiles), ``data``, ``models``, ``training``, ``zoo`` (cached pretrained models),
``metrics``, ``plots``, ``grading`` (check cells), ``methods`` (one module per unlearning method), ``lessons``
(one module per graded notebook) and ``course`` (build, run, grade).
"""

from .results import record

__version__ = "0.1.0"
__all__ = ["record", "__version__"]
