"""lasium.evaluate: real labeled few-shot benchmarks, scoring and reports (``lasium-eval``)."""
