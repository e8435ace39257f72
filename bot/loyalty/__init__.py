"""Internal loyalty measurement (MEASUREMENT.md): metrics, anonymity, summaries, charts."""
