"""The Textual app: browse directory-scoped sessions and read their conversations.

Only `ui.app.run_app` is imported by the CLI; everything here imports textual.
"""
