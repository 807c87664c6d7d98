"""What every long job shares: one writer per output folder (`lock`) and writes that fail clearly (`atomic`).

Kept import-light: nothing here imports torch or pandas at module level."""
from __future__ import annotations

from forensics.jobs.atomic import OutputWriteError, output_errors, remove_stale_temp_files
from forensics.jobs.lock import LOCK_NAME, LockHolder, OutputLock, OutputLockedError, output_lock

__all__ = ["LOCK_NAME", "LockHolder", "OutputLock", "OutputLockedError", "OutputWriteError", "output_errors",
           "output_lock", "remove_stale_temp_files"]
