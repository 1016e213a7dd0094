"""Building a request: settings (and output parsing), content blocks, history and its hygiene, cache markers,
prompt templates and the DataFrame forms they take. Imports only :mod:`claudekit._base`.
"""
