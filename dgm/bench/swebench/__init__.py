"""Real SWE-bench (Lite, Verified) through the official `swebench` package.

What is swebench's and used as is: the per-repo/version specs
(`MAP_REPO_VERSION_TO_SPECS`), the eval script (`make_eval_script_list`: reset
the test files, apply the hidden test patch, run the spec's test command), the
test spec with its environment and repository scripts (`make_test_spec`), the
log parsers and the FAIL_TO_PASS / PASS_TO_PASS grading (in `dgm.bench.grade`).

What is dgm's, one module per concern:
- `dataset`: rows from a local file, the cache or the HuggingFace hub; checks;
  the DGM paper's named subsets (`subsets/*.json`, shipped with the package);
- `specs`: swebench's specs, eval script and TestSpec for a row, offline too;
- `benchmark`: `SweBench`, the Benchmark over those rows;
- `images`: what every instance image offers agents and grading;
- `providers`: where an image comes from (pulled, built by swebench, offline);
- `offline_build` (with `wheels`, `debian`): the builder that needs no registry;
- `cache`: where downloads and builds are kept;
- `cli`: the SWE-bench options and `dgm bench validate`.

A task's `test_command` runs swebench's own eval script inside the instance
image; `Task.extra["eval_script"]` carries it so that grading can drop it into
the sandbox as a file (`grade.py` then leaves the test patch to the script).
"""
