"""The gateway's contact with the operating system: the one place that runs programs."""
