"""Catalogue of municipal initiatives for vulnerable residents.

Data flows one way, one module per stage:
rows (ingest) -> texts (text) -> vectors (embed) -> predictions (classify, score, group)
-> catalogue (store) -> reviewers (review), policy staff (search, report). `cli` is the click layer.
"""

__version__ = "0.1.0"
