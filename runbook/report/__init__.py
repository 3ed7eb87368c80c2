"""Run output: the run folder, the HTML report, JUnit details and summary.json."""
