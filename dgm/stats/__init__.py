"""Statistics of scores: intervals on resolve rates, paired comparisons of agents.

Pure functions of counts and outcomes: no archive, no I/O. Importing the
package imports only the standard library (the browsing commands show an
interval on every score and must start fast); scipy is imported inside the
functions that test hypotheses, where its second of import is paid once.
"""
