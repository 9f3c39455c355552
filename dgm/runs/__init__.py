"""One module per kind of run; each builds its run stack once from its inputs.

`eval` (`dgm eval`), `campaign` (`dgm run` / `dgm resume`), `replay`
(`dgm replay`); `stack` is the machinery they share (LLM client and budget,
gateway, evaluator, executor), `checks` the input checks they share. The CLI
parses options, calls a run and renders what its hooks report.
"""
