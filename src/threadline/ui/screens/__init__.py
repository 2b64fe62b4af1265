"""Screens: the main browsing screen and its dialogs (help, rename)."""
