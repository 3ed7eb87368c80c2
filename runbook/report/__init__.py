"""The run's writers: the HTML report, JUnit details and summary.json, and what the run hands on."""
