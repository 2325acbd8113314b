"""Site models: a ward's signed readings train a candidate, judged against the model in use on the
same folds; a study admin promotes it for the study or rolls back (issue 17).

``selectors`` (reads), ``services`` (requests, promotion, rollback), ``training`` (the worker's
job) and ``api`` (the REST endpoints). The learning itself is pure: :mod:`scoring.core.training.site`.
"""
