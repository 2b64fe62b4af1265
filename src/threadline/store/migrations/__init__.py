"""Numbered SQL migrations (NNNN_name.sql), applied in order by threadline.store.migrate."""
