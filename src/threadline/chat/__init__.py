"""Talking to models: the provider, the turn engine and the context window (no textual here).

Import the submodules you need (`threadline.chat.turns`, `threadline.chat.provider`, ...): this
package imports nothing on its own, so `import threadline.chat` costs nothing at start-up, and
httpx is imported only when a request is made.
"""
