"""Speed benchmarks, run by hand from the repository root: ``python -m benchmarks.lora_speed``.

Each writes its JSON to benchmarks/results/ with the date and machine."""
