"""The seed's ``TaskScheduler`` API on Temporal (:class:`TemporalTaskScheduler`).

``from sluice.scheduler import TemporalTaskScheduler``; see :mod:`.base` for the API.
"""

from sluice.scheduler.base import TaskResult, TaskScheduler, TaskStatus
from sluice.scheduler.temporal import TemporalTaskScheduler

__all__ = ["TaskResult", "TaskScheduler", "TaskStatus", "TemporalTaskScheduler"]
