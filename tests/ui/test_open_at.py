"""Opening a session at one item (MainScreen.open_session with at_message / at_summary, as the
search screen's hits and the memories screen's jump to a source do) in a session whose latest
summary folds its range away: the range unfolds when the item is in it, stays folded when not,
and the fold (f) keeps working on a window opened this way."""

from __future__ import annotations

import pytest
from apphelpers import make_app, settle, widget_lines
from memory_data import add_summarised_session, record_notifications, said
from sample_data import Sample
from test_search_screen import open_search, type_and_wait

from threadline.models import Message, Summary
from threadline.store import Store


def pane(app) -> str:
    return "\n".join(widget_lines(app.main_screen.conversation))


@pytest.fixture(autouse=True)
def _notes(monkeypatch: pytest.MonkeyPatch) -> None:
    record_notifications(monkeypatch)


@pytest.fixture
async def folded_db(plain_db: Sample) -> Sample:
    """The sample plus 300 numbered messages ("Message 1" …) whose first 280 are summarised."""
    session_id = await add_summarised_session(plain_db.path, 300, 280)
    plain_db.ids["summarised"] = session_id
    async with await Store.open(plain_db.path) as store:
        messages = await store.get_messages(session_id)
        summary = await store.latest_summary(session_id)
    assert summary is not None
    plain_db.ids["messages"] = [m.id for m in messages]  # type: ignore[assignment]
    plain_db.ids["summary"] = summary.id  # type: ignore[assignment]
    return plain_db


async def test_a_search_hit_inside_the_folded_range_unfolds_it(folded_db: Sample):
    app = make_app(folded_db)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_search(pilot)
        await type_and_wait(pilot, "121")
        hits = screen.results.hits
        assert [h.session_id for h in hits] == [folded_db.ids["summarised"]]
        await pilot.press("down", "enter")
        await settle(pilot)
        view = app.main_screen.conversation
        assert not view.folded
        item = view.cursor_item
        assert isinstance(item, Message) and item.content == "Message 121"
        assert view.found == ("m", item.id)
        assert view.item_state(view.cursor).covered  # shown faded, among what the summary covers
        assert "Message 121" in pane(app)
        assert view.has_older and view.has_newer
        # f folds the range away: the mark goes with it; f again shows it (faded).
        await pilot.press("f")
        await settle(pilot)
        assert view.folded and isinstance(view.items[0], Summary)
        assert view.found is None
        await pilot.press("f")
        await settle(pilot)
        assert not view.folded and view.has_older


async def test_a_message_after_the_summary_opens_with_the_range_folded(folded_db: Sample):
    target = folded_db.ids["messages"][289]  # "Message 290"
    app = make_app(folded_db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        app.main_screen.open_session(folded_db.ids["summarised"], target)
        await settle(pilot)
        view = app.main_screen.conversation
        assert view.folded
        # The window starts at the summary: what it folds away was dropped, none loads.
        assert isinstance(view.items[0], Summary) and not view.has_older
        assert not any(isinstance(i, Message) and i.id <= target - 10 for i in view.items)
        assert view.cursor_item.id == target and view.found == ("m", target)
        await pilot.press("home")
        await settle(pilot)
        assert "▸ 280 earlier messages folded into the summary below" in pane(app)


async def test_a_hit_on_the_latest_summary_opens_it_expanded_with_the_range_folded(
    folded_db: Sample,
):
    app = make_app(folded_db)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_search(pilot)
        await type_and_wait(pilot, "counted")
        hits = screen.results.hits
        assert [h.kind for h in hits] == ["summary"]
        await pilot.press("down", "enter")
        await settle(pilot)
        view = app.main_screen.conversation
        summary = folded_db.ids["summary"]
        assert view.folded
        assert isinstance(view.cursor_item, Summary) and view.cursor_item.id == summary
        assert view.found == ("s", summary)
        assert "• Nothing else happened." in pane(app)  # expanded
        assert "▸ 280 earlier messages folded" in pane(app)


async def test_a_message_gone_since_selects_the_nearest_and_says_so(folded_db: Sample):
    messages = folded_db.ids["messages"]
    async with await Store.open(folded_db.path) as store:
        await store.delete_messages_before(folded_db.ids["summarised"], messages[100])
    app = make_app(folded_db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        app.main_screen.open_session(folded_db.ids["summarised"], messages[50])
        await settle(pilot)
        view = app.main_screen.conversation
        assert view.found is None
        assert isinstance(view.cursor_item, Message)
        assert view.cursor_item.content == "Message 101"
        assert "That message is no longer in the session." in await said(pilot)
