"""The CRUD function writes new threads' ChatKit JSON itself (it never imports the SDK): pin it."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from chatkit.types import ThreadMetadata
from conversations_app.queries import thread_document


@pytest.mark.parametrize("title", ["Groceries", None])
@pytest.mark.parametrize(
    "created_at",
    [datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC)],
)
def test_thread_document_is_what_the_sdk_dumps(title: str | None, created_at: datetime) -> None:
    sdk = ThreadMetadata(id="thr_1", title=title, created_at=created_at)
    assert thread_document("thr_1", title, created_at) == sdk.model_dump(
        mode="json", exclude={"items"}
    )


def test_thread_document_loads_back_as_the_same_thread() -> None:
    created_at = datetime(2026, 5, 6, 7, 8, 9, tzinfo=timezone(timedelta(hours=0)))
    loaded = ThreadMetadata.model_validate(thread_document("thr_2", "T", created_at))
    assert loaded == ThreadMetadata(id="thr_2", title="T", created_at=created_at)
