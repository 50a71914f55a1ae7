"""promptreel: distributed, resumable batch rendering of prompt sets into video clips."""

__version__ = "0.1.0"
