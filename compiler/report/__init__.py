"""Writing a schedule out: schedule.json, report.md, report.html and the plots they show."""

from joule.report.write import write_outputs

__all__ = ["write_outputs"]
