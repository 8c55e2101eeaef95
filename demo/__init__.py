"""The demo: a varied openai SDK workload and the harness that runs a real proxy process around it."""
