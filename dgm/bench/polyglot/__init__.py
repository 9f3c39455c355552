"""Polyglot (Aider's polyglot-benchmark: 225 Exercism exercises in C++, Go,
Java, JavaScript, Python and Rust), DGM's second benchmark.

One module per concern:
- `languages`: each language's test command, build files, report format and
  what the agent is told about its tests;
- `exercises`: an exercise directory read into a repository, hidden tests
  and a reference solution (diffs and the base commit computed here);
- `results`: per-test results from each runner's report;
- `benchmark`: `Polyglot`, the Benchmark over a checkout given with --dataset;
- `subsets/*.json`: the DGM paper's dgm-small and dgm-medium ids.

The image with all six toolchains is built by sandboxes/build_polyglot_image.sh
(`dgm sandbox build --benchmark polyglot`).
"""
