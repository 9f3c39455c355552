"""dgm-mini, the bundled offline benchmark (see `dgm.bench.dgm_mini.benchmark`)."""

from dgm.bench.dgm_mini.benchmark import (
    BENCHMARK_NAME,
    REGENERATE_COMMAND,
    REPOS_DIR,
    ROOT_ENV,
    TASKS_FILE,
    DgmMini,
    build_repo,
    copy_sources,
    default_root,
    git,
    git_env,
    repo_dir_name,
)

__all__ = ["BENCHMARK_NAME", "REGENERATE_COMMAND", "REPOS_DIR", "ROOT_ENV", "TASKS_FILE", "DgmMini",
           "build_repo", "copy_sources", "default_root", "git", "git_env", "repo_dir_name"]
