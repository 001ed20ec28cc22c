"""One module per graded notebook: its setting, its per-profile bars, its questions and its headline metrics.

:mod:`unlearnlab.lessons.catalog` lists them; the grader (``unlearnlab.course``) finds a notebook's questions
there and never imports a particular lesson.
"""
