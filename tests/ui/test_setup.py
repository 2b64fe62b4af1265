"""First-run setup in the app: the composer says how, `i` or the palette opens the provider form,
the connection test lists the fake server's models, saving writes config.toml (0600) and the
composer works at once, without a restart."""

from __future__ import annotations

import os
import stat
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from apphelpers import make_app, settle, until
from composer_helpers import composer_text, pane_text, turn_done, type_and_send
from sample_data import Sample

from fakes.openai_server import FakeOpenAIServer
from threadline import paths
from threadline.config import Settings
from threadline.ui.screens.setup import ProviderSetupScreen

SIZE = (100, 32)


@pytest.fixture
def fake_server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as server:
        server.models = ["alpha-large", "alpha-small", "beta"]
        yield server


def config_path() -> Path:
    return paths.config_path()


async def open_form(pilot) -> ProviderSetupScreen:
    await settle(pilot)
    await pilot.press("i")
    await until(pilot, lambda: isinstance(pilot.app.screen, ProviderSetupScreen), "the form")
    await pilot.pause()
    screen = pilot.app.screen
    assert isinstance(screen, ProviderSetupScreen)
    return screen


async def fill(pilot, form: ProviderSetupScreen, selector: str, text: str) -> None:
    field = form.query_one(selector)
    field.value = text  # type: ignore[attr-defined]
    field.focus()
    await pilot.pause()


async def run_test_button(pilot, form: ProviderSetupScreen) -> None:
    await pilot.press("ctrl+t")
    await until(
        pilot,
        lambda: form.tested is not None or "✖" in str(form.query_one("#setup-result").render()),
        "the connection test",
    )
    await pilot.pause()


async def test_the_composer_says_how_and_i_opens_the_form(plain_db: Sample):
    app = make_app(plain_db)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert "press i to set one up" in composer_text(app)
        names = [c.title for c in app.get_system_commands(app.main_screen)]
        assert "Set up a model provider" in names
        form = await open_form(pilot)
        # Nothing set up: no server chosen, the URL empty, the file named.
        assert form.query_one("#setup-url").value == ""  # type: ignore[attr-defined]
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is app.main_screen, "the form to close")
        assert not config_path().exists()


async def test_setup_lists_models_writes_config_and_the_composer_works(
    plain_db: Sample, fake_server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
):
    fake_server.api_key = "sk-test-secret"
    monkeypatch.setenv("FAKE_KEY", "sk-test-secret")
    app = make_app(plain_db)
    async with app.run_test(size=SIZE) as pilot:
        form = await open_form(pilot)
        await fill(pilot, form, "#setup-url", fake_server.base_url + "/")
        await fill(pilot, form, "#setup-key", "FAKE_KEY")
        await run_test_button(pilot, form)
        assert form.tested == fake_server.base_url
        assert form.picker.shown == ["alpha-large", "alpha-small", "beta"]
        assert "3 models" in str(form.query_one("#setup-result").render())
        # Typing narrows the list; ↓ and enter pick one.
        await pilot.press("a", "l", "p")
        assert form.picker.shown == ["alpha-large", "alpha-small"]
        await pilot.press("down", "down", "enter")
        assert form.picker.value == "alpha-small"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: app.screen is app.main_screen, "the form to close")
        await until(pilot, lambda: app.engine is not None, "the new engine")
        await settle(pilot)

        path = config_path()
        data = tomllib.loads(path.read_text())
        assert data["provider"] == {
            "base_url": fake_server.base_url,
            "model": "alpha-small",
            "api_key_env": "FAKE_KEY",
        }
        assert "sk-test-secret" not in path.read_text()  # the key's name only
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600

        # The composer is on without a restart, and a message gets its reply from the server.
        assert app.main_screen.composer.enabled
        await pilot.press("n")
        await pilot.pause()
        await pilot.press("enter")  # a new session with the defaults: the model just chosen
        await settle(pilot)
        assert "alpha-small" in composer_text(app)
        await type_and_send(pilot, "Hello there")
        await turn_done(pilot)
        await until(pilot, lambda: "Hello there" in pane_text(app), "the reply")
        chats = fake_server.requests_of("chat")
        assert chats and chats[-1]["model"] == "alpha-small"


async def test_a_refused_connection_and_bad_answers_say_why_and_write_nothing(
    plain_db: Sample, fake_server: FakeOpenAIServer
):
    fake_server.api_key = "sk-needed"
    app = make_app(plain_db)
    async with app.run_test(size=SIZE) as pilot:
        form = await open_form(pilot)
        await fill(pilot, form, "#setup-url", fake_server.base_url)
        await run_test_button(pilot, form)  # no key: the server refuses
        result = str(form.query_one("#setup-result").render())
        assert result.startswith("✖"), result
        assert "401" in result or "key" in result.lower(), result
        assert form.picker.shown == []
        # A key pasted where its variable's name goes is refused, naming the rule.
        await fill(pilot, form, "#setup-key", "sk-needed-1234")
        await fill(pilot, form, "#setup-model", "beta")
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert "never the key itself" in str(form.query_one("#setup-result").render())
        assert app.focused is form.query_one("#setup-key")
        # Not a URL.
        await fill(pilot, form, "#setup-key", "")
        await fill(pilot, form, "#setup-url", "localhost:11434")
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert "not a URL" in str(form.query_one("#setup-result").render())
        assert isinstance(app.screen, ProviderSetupScreen)
    assert not config_path().exists()


async def test_a_preset_fills_the_url_and_key_variable(plain_db: Sample):
    app = make_app(plain_db)
    async with app.run_test(size=SIZE) as pilot:
        form = await open_form(pilot)
        from textual.widgets import Select

        form.query_one("#setup-preset", Select).value = "openrouter"
        await pilot.pause()
        assert form.query_one("#setup-url").value == "https://openrouter.ai/api/v1"  # type: ignore[attr-defined]
        assert form.query_one("#setup-key").value == "OPENROUTER_API_KEY"  # type: ignore[attr-defined]
        form.workers.cancel_group(form, "setup-test")  # no network in tests


async def test_saving_keeps_the_rest_of_an_existing_file(
    plain_db: Sample, fake_server: FakeOpenAIServer
):
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('# mine\n[ui]\ntheme = "nord"  # my theme\n\n[provider]\nmax_retries = 1\n')
    app = make_app(plain_db)
    async with app.run_test(size=SIZE) as pilot:
        form = await open_form(pilot)
        await fill(pilot, form, "#setup-url", fake_server.base_url)
        await fill(pilot, form, "#setup-model", "my-own-model")  # free text: not listed
        await pilot.press("enter")
        await until(pilot, lambda: app.screen is app.main_screen, "the form to close")
        await until(pilot, lambda: app.engine is not None, "the new engine")
    text = path.read_text()
    assert "# mine" in text and 'theme = "nord"  # my theme' in text
    data = tomllib.loads(text)
    assert data["provider"]["max_retries"] == 1
    assert data["provider"]["model"] == "my-own-model"
    assert "api_key_env" not in data["provider"]


async def test_the_new_session_form_offers_the_servers_models(
    plain_db: Sample, fake_server: FakeOpenAIServer
):
    from composer_helpers import chat_settings

    from threadline.ui.screens.new_session import NewSessionScreen

    app = make_app(plain_db, settings=chat_settings(fake_server, "alpha-large"))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, NewSessionScreen), "the form")
        form = app.screen
        picker = form.query_one("#new-session-models")
        await until(pilot, lambda: picker.shown, "the model list")
        assert picker.shown == ["alpha-large", "alpha-small", "beta"]
        await pilot.press("b", "down", "enter")  # narrowed to beta, picked
        assert picker.value == "beta"
        await pilot.press("enter")
        await until(pilot, lambda: app.screen is app.main_screen, "the form to close")
        await type_and_send(pilot, "Which model?")
        await turn_done(pilot)
        assert fake_server.requests_of("chat")[-1]["model"] == "beta"
        # Free text still works: a name the server does not list.
        app.main_screen.sessions.focus()  # (the composer has focus after sending)
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, NewSessionScreen), "the form")
        await pilot.press(*"myown")
        await pilot.press("enter")
        await until(pilot, lambda: app.screen is app.main_screen, "the form to close")
        assert app.main_screen.runner.draft is not None
        assert app.main_screen.runner.draft.model == "myown"


async def test_a_theme_chosen_in_the_app_is_remembered(plain_db: Sample):
    app = make_app(plain_db)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert app.theme == "textual-dark"
        app.theme = "nord"  # what the palette's "Change theme" does
        await pilot.pause()  # the theme signal starts the write
        await app.workers.wait_for_complete()
    assert tomllib.loads(config_path().read_text())["ui"]["theme"] == "nord"
    # The next start uses it.
    from threadline.config import load_settings

    settings = load_settings()
    settings.session.auto_cleanup = False
    again = make_app(plain_db, settings=settings)
    async with again.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert again.theme == "nord"


@pytest.fixture
def other_tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Claude Code history in its usual place (CLAUDE_CONFIG_DIR); the other tools' places
    empty."""
    claude = tmp_path / "claude"
    (claude / "projects" / "-home-dev-src-api").mkdir(parents=True)
    (claude / "projects" / "-home-dev-src-api" / "a.jsonl").write_text("{}\n")
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(claude))
    for var in ("CODEX_HOME", "LLM_USER_PATH", "GEMINI_CLI_HOME"):
        (tmp_path / var).mkdir()
        monkeypatch.setenv(var, str(tmp_path / var))
    return claude


def not_following() -> Settings:
    """Capture decided against (so the app does not ask about following the history)."""
    from apphelpers import quiet_settings

    settings = quiet_settings()
    settings.sources.claude_code = settings.sources.codex = False
    return settings


async def test_an_empty_list_names_the_import_of_history_found(empty_db: Path, other_tools):
    app = make_app(empty_db, settings=not_following())
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        from apphelpers import widget_lines

        text = " ".join("\n".join(widget_lines(app.main_screen.sessions)).split())
        assert "history from Claude Code" in text
        assert "threadline import claude-code" in text
        assert "codex" not in text


async def test_no_import_advice_once_the_database_has_sessions(plain_db: Sample, other_tools):
    from apphelpers import widget_lines

    # Nothing in this directory.
    app = make_app(plain_db, working_dir="/home/dev/elsewhere", settings=not_following())
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert app.main_screen.sessions.total == 0
        text = " ".join("\n".join(widget_lines(app.main_screen.sessions)).split())
        assert "No sessions in ~/elsewhere yet." in text
        assert "import" not in text


async def test_the_form_says_when_the_environment_overrides_it(
    plain_db: Sample, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("THREADLINE_MODEL", "from-env")
    app = make_app(plain_db)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.open_provider_setup()
        await until(pilot, lambda: isinstance(app.screen, ProviderSetupScreen), "the form")
        await pilot.pause()
        where = str(app.screen.query_one("#setup-where").render())
        assert "THREADLINE_MODEL is set here and override" in where
