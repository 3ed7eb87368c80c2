"""Running the checklist inside pytest: cases from descriptions, the gate that says whether a
case may run, the prefetch that runs a host's checks ahead, the verdict and record of each test,
sharding and host scheduling, and the post-deploy readiness wait."""
