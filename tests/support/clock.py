"""A clock the test moves by hand, for code that takes ``clock: Callable[[], float]``."""

from __future__ import annotations

DAY_SECONDS = 86_400


def into_a_utc_day(seconds: float, epoch_day: int = 20_833) -> float:
    """A time ``seconds`` after the start of a fixed UTC day (seconds since the epoch)."""
    return epoch_day * DAY_SECONDS + seconds


class FakeClock:
    """Seconds since the epoch, as ``time.time`` gives them, but only moving when told to."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
