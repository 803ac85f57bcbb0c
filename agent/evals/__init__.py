"""Task suites: task files, the runner, checks and reports."""
