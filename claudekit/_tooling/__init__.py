"""Tools the model may call (schemas, running them) and the approval policy that decides which calls run.
Imports only :mod:`claudekit._request` and :mod:`claudekit._base`.
"""
