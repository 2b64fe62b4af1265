"""Widgets of the app. The two long views render lines on demand (Textual's Line API)."""
