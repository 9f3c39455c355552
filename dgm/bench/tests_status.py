"""What grading writes into a task run's `tests_status`, known without loading the grader.

Readers of archived runs (`dgm show`, the explorer) need these keys; importing
grade.py for them would import the sandbox and benchmark machinery, more than
half a browsing command's budget.
"""

TEST_CONFIG_KEPT_OUT_KEY = "test_config_kept_out"
"""Where a task run's tests_status lists the test configuration files grading kept out of its patch."""
