"""The recommender: listener interactions in, ranked tracks out.

Plain Python and numpy (``implicit`` for iALS/BPR), no Dagster: the assets
in ``assets/ml.py`` and the API's ``serving/services/recommend.py`` call
these modules. Almost every track on an AI radio is new, so every model
here is judged on a cold-start slice as well as overall (``evaluate``),
and the hybrid (``hybrid``) gives a track a representation from its
content the moment it is mastered (``features``).
"""
