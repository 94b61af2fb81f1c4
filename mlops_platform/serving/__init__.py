"""Online serving: the HTTP app that serves every model's champion by name, and the deployers' contract.

No Dagster import here (the serving image carries none) except in ``deployers``, whose contract is a
Dagster resource.
"""
