"""The `dgm` command line: parse options, call a run or a query, render the result.

`app.py` holds the Typer app and the entry point; the other modules are its
faces (browse commands, tables, the live dashboard) and shared options. The
package's own import is kept empty so that importing one helper (a table
renderer, say) does not build the whole app.
"""
